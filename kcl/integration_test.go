package kcl_test

// Tests against the emulators (kinesis-mock, dynalite) through testenv;
// they are skipped when no endpoint is configured. Volumes are small:
// kinesis-mock takes about 1,000 records/s, shared by every test running.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/kinesisgo/kinesis/lease"
)

// delivery is one user record as a processor saw it.
type delivery struct {
	worker string
	shard  string
	pk     string
	seq    string
	sub    uint64
	data   string
}

func (d delivery) id() string { return d.seq + "/" + strconv.FormatUint(d.sub, 10) }

// collector records every delivery of every worker sharing it, and
// checkpoints each batch.
type collector struct {
	mu  sync.Mutex
	all []delivery
	// checkpointEvery makes the processors checkpoint every n-th batch of
	// a shard only. Default 0: every batch.
	checkpointEvery int
	batches         map[string]int // by worker and shard
}

func (c *collector) processor(worker string) kcl.RecordProcessor {
	return checkpointOnShutdown{kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
		c.mu.Lock()
		for _, r := range b.Records {
			c.all = append(c.all, delivery{worker: worker, shard: r.ShardID, pk: r.PartitionKey, seq: r.SequenceNumber, sub: r.SubSequenceNumber, data: string(r.Data)})
		}
		if c.batches == nil {
			c.batches = map[string]int{}
		}
		c.batches[worker+" "+b.ShardID]++
		n := c.batches[worker+" "+b.ShardID]
		c.mu.Unlock()
		if c.checkpointEvery > 1 && n%c.checkpointEvery != 0 {
			return nil
		}
		return b.Checkpoint(ctx)
	})}
}

// checkpointOnShutdown is a processor that checkpoints what it processed
// in ShutdownRequested: at a graceful shutdown, and when its lease is
// handed over to another worker (a move to balance the load).
type checkpointOnShutdown struct{ kcl.ProcessorFunc }

func (checkpointOnShutdown) ShutdownRequested(ctx context.Context, in *kcl.ShutdownRequestedInput) error {
	return in.Checkpointer.CheckpointProcessed(ctx)
}

func (c *collector) snapshot() []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(c.all))
	for _, d := range c.all {
		seen[d.id()] = true
	}
	return len(seen)
}

// checkKeyOrder checks that every written record was delivered and that,
// per partition key, the first deliveries come in the order written: the
// data of record n of a key is "<key>#<n>". It returns the records
// delivered more than once.
func checkKeyOrder(t *testing.T, got []delivery, perKey map[string]int) []delivery {
	t.Helper()
	next := map[string]int{}
	seen := map[string]bool{}
	var dups []delivery
	for _, d := range got {
		if seen[d.id()] {
			dups = append(dups, d)
			continue
		}
		seen[d.id()] = true
		k, nStr, ok := strings.Cut(d.data, "#")
		n, err := strconv.Atoi(nStr)
		if !ok || err != nil || k != d.pk {
			t.Errorf("unexpected record %+v", d)
			continue
		}
		if n != next[k] {
			t.Errorf("key %s: record %d delivered when %d was expected next (shard %s)", k, n, next[k], d.shard)
		}
		next[k] = n + 1
	}
	for k, n := range perKey {
		if next[k] != n {
			t.Errorf("key %s: %d of %d records delivered", k, next[k], n)
		}
	}
	return dups
}

// producer writes records "<key>#<n>" with PutRecords, at most one record
// per key per call and failed entries retried before the next call, so that
// per key the stream holds the records in the order written.
type producer struct {
	client *kinesis.Client
	stream string
	count  map[string]int
	// pause is waited between PutRecords calls. Default none.
	pause time.Duration
}

func (p *producer) put(t *testing.T, keys, perKey int) {
	t.Helper()
	if p.count == nil {
		p.count = map[string]int{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for range perKey {
		var entries []kintypes.PutRecordsRequestEntry
		for k := range keys {
			key := fmt.Sprintf("key-%03d", k)
			entries = append(entries, kintypes.PutRecordsRequestEntry{
				PartitionKey: aws.String(key), Data: fmt.Appendf(nil, "%s#%d", key, p.count[key]),
			})
			p.count[key]++
		}
		for attempt := 0; len(entries) > 0; attempt++ {
			if attempt > 50 {
				t.Fatalf("PutRecords: entries still failing after %d attempts", attempt)
			}
			out, err := p.client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries})
			if err != nil {
				if ctx.Err() != nil {
					t.Fatalf("PutRecords: %v", err)
				}
				time.Sleep(50 * time.Millisecond) // retry the whole call
				continue
			}
			var failed []kintypes.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					failed = append(failed, entries[i])
				}
			}
			entries = failed
		}
		time.Sleep(p.pause) // pacing the producer, not waiting for a condition
	}
}

func (p *producer) total() int {
	n := 0
	for _, c := range p.count {
		n += c
	}
	return n
}

// env is what the workers of one test share.
type env struct {
	t         *testing.T
	kinesis   *kinesis.Client // through px
	px        *proxy.Proxy
	stream    string
	table     string
	ddbURL    string
	kinURL    string
	failover  time.Duration
	collector *collector
	// mode is how the workers read: e.config's Retrieval.Mode.
	mode    kcl.RetrievalMode
	mu      sync.Mutex
	workers map[string]*running // by worker ID, while running
}

// newEnv creates a stream and names a lease table. Kinesis is reached
// through the proxy with ShardLifecycle on, so that ListShards filters and
// retention behave as in AWS's API reference (kinesis-mock lists every
// shard for AT_TRIM_HORIZON and never ages a shard out), and with FanOut,
// which serves enhanced fan-out as AWS does (kinesis-mock's SubscribeToShard
// stream lacks the initial-response event the SDK waits for); consumers are
// ACTIVE at once. The proxy's other limits are AWS's per-shard ones.
func newEnv(t *testing.T, shards int) *env {
	ep := testenv.Require(t)
	px := proxy.StartForTest(t, proxy.Config{ShardLifecycle: true, FanOut: &proxy.FanOutConfig{ConsumerDelay: -1}})
	client := testenv.KinesisClientAt(t, px.URL())
	stream := testenv.CreateStream(t, client, shards)
	_, table := testenv.NewTableName(t)
	return &env{t: t, kinesis: client, px: px, stream: stream, table: table, kinURL: px.URL(), ddbURL: ep.DynamoDB,
		failover: 3 * time.Second, collector: &collector{}}
}

func (e *env) config(id string) kcl.Config {
	cfg := kcl.Config{
		Stream: e.stream, App: "app", LeaseTable: e.table, WorkerID: id,
		Processor:          e.collector.processor(id),
		InitialPosition:    checkpoint.TrimHorizon,
		Kinesis:            testenv.KinesisClientAt(e.t, e.kinURL),
		DynamoDB:           testenv.DynamoDBClientAt(e.t, e.ddbURL),
		Lease:              kcl.LeaseConfig{FailoverTime: e.failover, TakeInterval: e.failover / 5},
		Retrieval:          kcl.RetrievalConfig{IdleWait: 200 * time.Millisecond},
		ParentPollInterval: 500 * time.Millisecond,
		ShardSyncInterval:  2 * time.Second,
		Logger:             zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)),
	}
	if e.mode == kcl.RetrievalFanOut {
		cfg.Kinesis = kcl.H2CKinesisClient(e.t, e.kinURL)
		cfg.Retrieval = kcl.RetrievalConfig{Mode: kcl.RetrievalFanOut}
	}
	return cfg
}

// forEachMode runs test as a subtest per retrieval mode, "polling" and
// "fanout": the guarantees of the worker hold in both.
func forEachMode(t *testing.T, test func(t *testing.T, mode kcl.RetrievalMode)) {
	for _, m := range []struct {
		name string
		mode kcl.RetrievalMode
	}{{"polling", kcl.RetrievalPolling}, {"fanout", kcl.RetrievalFanOut}} {
		t.Run(m.name, func(t *testing.T) { test(t, m.mode) })
	}
}

// newModeEnv is newEnv with the workers reading in mode. Once they have
// stopped, it checks that they read in that mode only: records pushed by
// subscriptions and no GetRecords under fan-out, no subscription when
// polling.
func newModeEnv(t *testing.T, shards int, mode kcl.RetrievalMode) *env {
	e := newEnv(t, shards)
	e.mode = mode
	t.Cleanup(func() { // before the proxy closes, after the workers stop
		fan, reads := e.px.FanOutStats(), e.px.Stats().Calls["Kinesis.GetRecords"]
		switch {
		case mode == kcl.RetrievalFanOut && (fan.Records == 0 || reads != 0):
			t.Errorf("under fan-out: %d records pushed by %d subscriptions, %d GetRecords calls; want records pushed and no GetRecords", fan.Records, fan.Subscriptions, reads)
		case mode == kcl.RetrievalPolling && fan.Subscriptions != 0:
			t.Errorf("polling: %d subscriptions, want none", fan.Subscriptions)
		}
	})
	return e
}

// running is a worker running in the background.
type running struct {
	w       *kcl.Worker
	cancel  context.CancelFunc
	done    chan error
	stopped atomic.Bool
}

func (e *env) start(cfg kcl.Config) *running {
	e.t.Helper()
	w, err := kcl.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	e.mu.Lock()
	if e.workers == nil {
		e.workers = map[string]*running{}
	}
	e.workers[w.WorkerID()] = r
	e.mu.Unlock()
	return r
}

// stop cancels the worker's context (graceful unless AbortOnCancel) and
// waits for Run.
func (r *running) stop(t *testing.T) {
	r.cancel()
	r.stopped.Store(true)
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("Run did not return within 30s")
	}
}

// leases returns the lease table's leases, none when it cannot be read
// (it may not exist yet). A wait for a condition that holds for every
// lease must use readLeases instead: an empty list makes it hold.
func (e *env) leases() []lease.Lease {
	e.t.Helper()
	ls, _ := e.readLeases()
	return ls
}

// readLeases reads the lease table; false (and a log line) when that
// failed.
// leader reads the leader item of the lease table's coordinator state.
func (e *env) leader() lease.LeaderState {
	e.t.Helper()
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: testenv.DynamoDBClientAt(e.t, e.ddbURL), Table: e.table})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Leader(ctx)
	if err != nil {
		e.t.Logf("reading the leader item: %v", err)
	}
	return st
}

func (e *env) readLeases() ([]lease.Lease, bool) {
	e.t.Helper()
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: testenv.DynamoDBClientAt(e.t, e.ddbURL), Table: e.table})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ls, err := store.List(ctx)
	if err != nil {
		if !errors.As(err, new(*ddbtypes.ResourceNotFoundException)) {
			e.t.Logf("reading the lease table: %v", err)
		}
		return nil, false
	}
	return ls, true
}

// owners counts the unfinished leases per owner.
func (e *env) owners() map[string]int {
	out := map[string]int{}
	for _, l := range e.leases() {
		if !l.Finished() {
			out[l.Owner]++
		}
	}
	return out
}

// waitBalanced waits until the unfinished leases are owned as want (counts
// per worker) in the table, and every running worker processes exactly the
// shards the table says it owns: records written afterwards are not
// processed by a worker that lost their shard without knowing yet.
func (e *env) waitBalanced(want ...int) {
	e.t.Helper()
	slices.Sort(want)
	wait.For(e.t, 30*time.Second, fmt.Sprintf("leases balanced as %v", want), func() bool {
		byOwner := map[string][]string{}
		for _, l := range e.leases() {
			if !l.Finished() {
				byOwner[l.Owner] = append(byOwner[l.Owner], l.Key)
			}
		}
		if len(byOwner[""]) > 0 {
			return false
		}
		var counts []int
		for _, ks := range byOwner {
			counts = append(counts, len(ks))
		}
		slices.Sort(counts)
		if !slices.Equal(counts, want) {
			return false
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		for id, r := range e.workers {
			if r.stopped.Load() {
				continue
			}
			keys := byOwner[id]
			slices.Sort(keys)
			if !slices.Equal(r.w.Shards(), keys) {
				return false
			}
		}
		return true
	})
}

func TestIntegrationThreeWorkersFourShards(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode kcl.RetrievalMode) {
		e := newModeEnv(t, 4, mode)
		for i := range 3 {
			e.start(e.config(fmt.Sprintf("worker-%d", i)))
		}
		e.waitBalanced(1, 1, 2)
		p := &producer{client: e.kinesis, stream: e.stream}
		p.put(t, 200, 25) // 5,000 records, 200 keys
		wait.For(t, 90*time.Second, "5,000 records", func() bool { return e.collector.distinct() >= p.total() })
		got := e.collector.snapshot()
		if dups := checkKeyOrder(t, got, p.count); len(dups) > 0 {
			t.Errorf("%d duplicates without failures, first %+v", len(dups), dups[0])
		}
		workers := map[string]int{}
		for _, d := range got {
			workers[d.worker]++
		}
		if len(workers) != 3 {
			t.Errorf("records processed by %d workers (%v), want 3", len(workers), workers)
		}
	})
}

func TestIntegrationCrashFailoverThroughFaultProxy(t *testing.T) {
	e := newEnv(t, 4)
	// Reads are throttled below what the workers ask for (2 GetRecords
	// calls/s per shard against their 5) and 1% of all Kinesis requests
	// (and of PutRecords entries) fail with InternalFailure.
	px := proxy.StartForTest(t, proxy.Config{Seed: 7, Limits: proxy.Limits{ReadCallsPerSecond: 2},
		Kinesis: proxy.KinesisFaults{InternalFailure: 0.01, ServerError: 0.01}, ShardLifecycle: true})
	e.kinURL = px.URL()
	// Checkpoints every third batch only, so that the crash leaves records
	// processed past the last checkpoint: they are processed again.
	e.collector.checkpointEvery = 3
	cfgs := make([]kcl.Config, 3)
	ws := make([]*running, 3)
	tables := make([]*callLog, 3) // each worker's lease table calls
	for i := range ws {
		cfgs[i] = e.config(fmt.Sprintf("worker-%d", i))
		tables[i] = &callLog{}
		cfgs[i].DynamoDB = timedDynamoDB{DynamoDBAPI: cfgs[i].DynamoDB, log: tables[i]}
		cfgs[i].AbortOnCancel = true
		cfgs[i].Retrieval.IdleWait = time.Millisecond // read at 5 calls/s even when idle
		ws[i] = e.start(cfgs[i])
	}
	e.waitBalanced(1, 1, 2)
	p := &producer{client: testenv.KinesisClientAt(t, px.URL()), stream: e.stream}
	p.put(t, 100, 10)
	wait.For(t, 60*time.Second, "the first 1,000 records", func() bool { return e.collector.distinct() >= p.total() })

	// Crash worker-0 while records flow.
	var flow sync.WaitGroup
	flow.Add(1)
	base := p.total()
	second := &producer{client: p.client, stream: e.stream, count: maps.Clone(p.count)}
	go func() { defer flow.Done(); second.put(t, 100, 10) }()
	wait.For(t, 60*time.Second, "records flowing", func() bool { return e.collector.distinct() >= base+200 })
	dead := cfgs[0].WorkerID
	ws[0].stop(t) // AbortOnCancel: no hand-off, as a crash
	crashed := time.Now()
	deadCheckpoints := map[string]string{}
	for _, l := range e.leases() {
		// A lease the dead worker was handing over (CheckpointOwner) was
		// still processed by it.
		if l.Owner == dead || l.CheckpointOwner == dead {
			deadCheckpoints[l.Key] = l.Checkpoint + "/" + strconv.FormatUint(l.CheckpointSubSequence, 10)
		}
	}
	if len(deadCheckpoints) == 0 {
		t.Fatalf("the crashed worker held no lease")
	}
	wait.For(t, 30*time.Second, "survivors owning the dead worker's shards", func() bool {
		ls, ok := e.readLeases()
		if !ok {
			return false
		}
		for _, l := range ls {
			if _, ok := deadCheckpoints[l.Key]; ok && (l.Owner == dead || l.Owner == "") {
				return false
			}
		}
		return true
	})
	seenOwnedAt := time.Now()
	seenOwned := seenOwnedAt.Sub(crashed)
	// The bound is the coordinator's: a lease is expired FailoverTime
	// after a taker pass first saw its last counter, and the pass due
	// then takes it. It is measured to the end of the survivor's write
	// that took the lease (not to this test's next scan), less the time
	// the taker spent waiting on the lease table meanwhile (its scans and
	// its writes to that lease): on a loaded 2-core machine single
	// dynalite calls were seen taking a second.
	var takeover, waited time.Duration
	for key := range deadCheckpoints {
		// The first write to the lease by a survivor once the crash was
		// over: a take, whether its caller saw it succeed, or lose to a
		// take by another survivor that was then done. This test's scan
		// can see the new owner before the taker has the answer.
		var takenAt time.Time
		var taker *callLog
		wait.For(t, 10*time.Second, "the survivor's write taking "+key, func() bool {
			for i, l := range tables {
				if cfgs[i].WorkerID == dead {
					continue
				}
				if at, ok := l.firstWrite(key, crashed); ok && (takenAt.IsZero() || at.Before(takenAt)) {
					takenAt, taker = at, l
				}
			}
			return taker != nil
		})
		w := taker.waited(crashed, takenAt, key)
		if d := takenAt.Sub(crashed) - w; d > takeover {
			takeover, waited = d, w
		}
	}
	takeInterval := e.failover / 5                            // as configured
	bound := e.failover + takeInterval + 500*time.Millisecond // + scheduling
	t.Logf("shards of the crashed worker taken %v (plus %v waiting on the lease table) and seen owned %v after the crash (FailoverTime %v, taker pass %v)",
		takeover, waited, seenOwned, e.failover, takeInterval)
	if takeover > bound {
		t.Errorf("take-over took %v (plus %v waiting on the lease table), want within FailoverTime + one taker pass (+0.5s) = %v", takeover, waited, bound)
	}
	flow.Wait()
	wait.For(t, 90*time.Second, "every record", func() bool { return e.collector.distinct() >= second.total() })

	st := px.Stats()
	t.Logf("proxy: %d requests, %d throttled, %d faults injected", st.Requests, st.Throttled, st.Faults)
	if st.Throttled == 0 || st.Faults == 0 {
		t.Errorf("the proxy throttled %d and failed %d requests; the test needs both", st.Throttled, st.Faults)
	}
	dups := checkKeyOrder(t, e.collector.snapshot(), second.count)
	t.Logf("%d duplicates after the crash; dead worker's checkpoints %v", len(dups), deadCheckpoints)
	for _, d := range dups {
		cp, ok := deadCheckpoints[d.shard]
		if !ok {
			t.Errorf("duplicate %s in shard %s, which the crashed worker did not hold", d.id(), d.shard)
			continue
		}
		if cmpPos(d.id(), cp) <= 0 {
			t.Errorf("duplicate %s at or before the crashed worker's checkpoint %s of shard %s", d.id(), cp, d.shard)
		}
	}
}

// cmpPos compares "seq/sub" positions (a sentinel sorts first).
func cmpPos(a, b string) int {
	as, asub, _ := strings.Cut(a, "/")
	bs, bsub, _ := strings.Cut(b, "/")
	an, ok1 := new(big.Int).SetString(as, 10)
	bn, ok2 := new(big.Int).SetString(bs, 10)
	switch {
	case !ok1 && !ok2:
		return 0
	case !ok1:
		return -1
	case !ok2:
		return 1
	}
	if c := an.Cmp(bn); c != 0 {
		return c
	}
	x, _ := strconv.Atoi(asub)
	y, _ := strconv.Atoi(bsub)
	return x - y
}

func TestIntegrationSplitAndMergeMidStream(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode kcl.RetrievalMode) {
		e := newModeEnv(t, 4, mode)
		e.start(e.config("worker-a"))
		e.start(e.config("worker-b"))
		e.waitBalanced(2, 2)
		p := &producer{client: e.kinesis, stream: e.stream}
		p.put(t, 60, 5)
		wait.For(t, 60*time.Second, "records before resharding", func() bool { return e.collector.distinct() >= 150 })

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shards, err := e.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
		if err != nil {
			t.Fatal(err)
		}
		ss := shards.Shards
		slices.SortFunc(ss, func(a, b kintypes.Shard) int {
			x, _ := new(big.Int).SetString(*a.HashKeyRange.StartingHashKey, 10)
			y, _ := new(big.Int).SetString(*b.HashKeyRange.StartingHashKey, 10)
			return x.Cmp(y)
		})
		start, _ := new(big.Int).SetString(*ss[0].HashKeyRange.StartingHashKey, 10)
		end, _ := new(big.Int).SetString(*ss[0].HashKeyRange.EndingHashKey, 10)
		mid := new(big.Int).Rsh(new(big.Int).Add(start, end), 1)
		if _, err := e.kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(e.stream),
			ShardToSplit: ss[0].ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
			t.Fatal(err)
		}
		if err := testenv.WaitStreamActive(ctx, e.kinesis, e.stream); err != nil {
			t.Fatal(err)
		}
		p.put(t, 60, 5)
		if _, err := e.kinesis.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(e.stream),
			ShardToMerge: ss[2].ShardId, AdjacentShardToMerge: ss[3].ShardId}); err != nil {
			t.Fatal(err)
		}
		if err := testenv.WaitStreamActive(ctx, e.kinesis, e.stream); err != nil {
			t.Fatal(err)
		}
		p.put(t, 60, 5)
		wait.For(t, 90*time.Second, "every record", func() bool { return e.collector.distinct() >= p.total() })
		dups := checkKeyOrder(t, e.collector.snapshot(), p.count)
		t.Logf("%d duplicates (leases may move as children appear)", len(dups))
		parents := []string{*ss[0].ShardId, *ss[2].ShardId, *ss[3].ShardId}
		wait.For(t, 30*time.Second, "parents at SHARD_END (or cleaned up)", func() bool {
			ls, ok := e.readLeases()
			if !ok {
				return false
			}
			for _, l := range ls {
				if slices.Contains(parents, l.Key) && !l.Finished() {
					return false
				}
			}
			return true
		})
		for _, l := range e.leases() {
			if slices.Contains(parents, l.Key) && len(l.ChildShardIDs) == 0 {
				t.Errorf("parent lease %s at SHARD_END names no child shards", l.Key)
			}
		}
		// Children got records: the resharding was followed.
		shardsSeen := map[string]bool{}
		for _, d := range e.collector.snapshot() {
			shardsSeen[d.shard] = true
		}
		if len(shardsSeen) < 7 {
			t.Errorf("records came from %d shards, want 7 (4 parents, 2 split children, 1 merged child)", len(shardsSeen))
		}
	})
}

func TestIntegrationRestartInsideAggregatedRecord(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode kcl.RetrievalMode) {
		e := newModeEnv(t, 1, mode)
		var enc aggregation.Encoder
		for i := range 6 {
			enc.Add(aggregation.Record{PartitionKey: fmt.Sprintf("user-%d", i), Data: fmt.Appendf(nil, "sub-%d", i)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := e.kinesis.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(e.stream), PartitionKey: aws.String("a"), Data: enc.Encode()})
		if err != nil {
			t.Fatal(err)
		}
		seq := aws.ToString(out.SequenceNumber)

		// The first worker processes sub-records 0..2 of the aggregated record,
		// checkpoints there, and is shut down.
		processed := make(chan struct{})
		var once sync.Once
		cfg := e.config("first")
		cfg.Processor = kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
			if len(b.Records) != 6 {
				return fmt.Errorf("got %d user records, want 6", len(b.Records))
			}
			if err := b.Checkpointer.CheckpointAt(ctx, b.Records[2].SequenceNumber, b.Records[2].SubSequenceNumber); err != nil {
				return err
			}
			once.Do(func() { close(processed) })
			return nil
		})
		first := e.start(cfg)
		select {
		case <-processed:
		case <-time.After(30 * time.Second):
			t.Fatal("the first worker got no records")
		}
		if err := first.w.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}

		e.start(e.config("second"))
		wait.For(t, 30*time.Second, "the rest of the aggregated record", func() bool { return e.collector.distinct() >= 3 })
		var got []string
		for _, d := range e.collector.snapshot() {
			got = append(got, d.id()+"="+d.data)
		}
		want := []string{seq + "/3=sub-3", seq + "/4=sub-4", seq + "/5=sub-5"}
		if !slices.Equal(got, want) {
			t.Fatalf("after the restart got %v\nwant %v", got, want)
		}
	})
}

// Graceful shutdown of one of two workers: its shards are processed by
// the other within 2s. Worker-a's processor fails every batch (and so never
// checkpoints), so the records of its shards wait in the stream, written
// before the shutdown: the measure does not include writing them.
func TestIntegrationGracefulShutdownHandsOverWithin2s(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode kcl.RetrievalMode) {
		e := newModeEnv(t, 4, mode)
		e.failover = 5 * time.Second // taker pass every 1s
		cfgA := e.config("worker-a")
		cfgA.Processor = kcl.ProcessorFunc(func(context.Context, *kcl.Batch) error { return errors.New("not now") })
		a := e.start(cfgA)
		cfgB := e.config("worker-b")
		calls := &callLog{iterShard: map[string]string{}}
		cfgB.Kinesis = timedKinesis{kinesisAPI: cfgB.Kinesis.(kinesisAPI), log: calls}
		cfgB.DynamoDB = timedDynamoDB{DynamoDBAPI: cfgB.DynamoDB, log: calls}
		first := &firstRecords{at: map[string]time.Time{}}
		cfgB.Processor = first.wrap(cfgB.Processor)
		e.start(cfgB)
		e.waitBalanced(2, 2)
		aShards := map[string]bool{}
		for _, l := range e.leases() {
			if l.Owner == "worker-a" {
				aShards[l.Key] = true
			}
		}
		p := &producer{client: e.kinesis, stream: e.stream}
		p.put(t, 40, 1)
		shardsDone := func(want func(shard string) bool) func() bool {
			return func() bool {
				seen := map[string]bool{}
				for _, d := range e.collector.snapshot() {
					if want(d.shard) {
						seen[d.shard] = true
					}
				}
				return len(seen) == 2
			}
		}
		wait.For(t, 30*time.Second, "worker-b processing its own shards", shardsDone(func(s string) bool { return !aShards[s] }))

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.w.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		released := time.Now()
		wait.For(t, 10*time.Second, "worker-b owning worker-a's shards", func() bool {
			ls, ok := e.readLeases()
			if !ok {
				return false
			}
			for _, l := range ls {
				if aShards[l.Key] && l.Owner != "worker-b" {
					return false
				}
			}
			return true
		})
		owned := time.Since(released)
		wait.For(t, 10*time.Second, "worker-b processing worker-a's shards", shardsDone(func(s string) bool { return aShards[s] }))
		processed := time.Since(released)
		// The 2s are the worker's: noticing the released leases (one taker
		// pass, TakeInterval 1s), taking them and starting to read. The time
		// worker-b spent waiting on the emulators on the way (its Scan and the
		// writes taking those leases, GetShardIterator and GetRecords of those
		// shards) is not counted: on a loaded 2-core machine single emulator
		// calls were seen taking over a second each.
		var handOver, emulators time.Duration
		for shard := range aShards {
			at, ok := first.get(shard)
			if !ok {
				t.Fatalf("no first record time for %s", shard)
			}
			wait := calls.waited(released, at, shard)
			if d := at.Sub(released) - wait; d > handOver {
				handOver, emulators = d, wait
			}
		}
		t.Logf("worker-a's shards owned by worker-b %v and processed %v after the shutdown returned; hand-over %v without %v waiting on the emulators", owned, processed, handOver, emulators)
		if handOver > 2*time.Second {
			t.Errorf("hand-over took %v (plus %v waiting on the emulators), want within 2s", handOver, emulators)
		}
		wait.For(t, 30*time.Second, "every record", func() bool { return e.collector.distinct() >= p.total() })
		if dups := checkKeyOrder(t, e.collector.snapshot(), p.count); len(dups) > 0 {
			t.Errorf("%d records processed twice", len(dups))
		}
	})
}

// firstRecords notes when a processor first got records of each shard.
type firstRecords struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (f *firstRecords) wrap(next kcl.RecordProcessor) kcl.RecordProcessor {
	return kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
		if len(b.Records) > 0 {
			now := time.Now()
			f.mu.Lock()
			if _, ok := f.at[b.ShardID]; !ok {
				f.at[b.ShardID] = now
			}
			f.mu.Unlock()
		}
		return next.ProcessRecords(ctx, b)
	})
}

func (f *firstRecords) get(shard string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.at[shard]
	return at, ok
}

// callLog records when a worker's calls to the emulators started and ended,
// with the shard (or lease) each was about; "" for lease table scans.
type callLog struct {
	mu        sync.Mutex
	calls     []call
	iterShard map[string]string // shard iterator → shard
}

type call struct {
	shard      string
	start, end time.Time
}

func (l *callLog) add(shard string, start time.Time) {
	end := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, call{shard: shard, start: start, end: end})
}

// firstWrite returns when the first write to lease key that ended after
// from ended, whatever its outcome.
func (l *callLog) firstWrite(key string, from time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, c := range l.calls {
		if c.shard == key && c.end.After(from) && (first.IsZero() || c.end.Before(first)) {
			first = c.end
		}
	}
	return first, !first.IsZero()
}

func (l *callLog) noteIterator(it *string, shard string) {
	if it == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.iterShard[*it] = shard
}

func (l *callLog) shardOf(it *string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.iterShard[aws.ToString(it)]
}

// waited returns how long, between from and to, at least one call about
// shard or a lease table scan was in flight.
func (l *callLog) waited(from, to time.Time, shard string) time.Duration {
	l.mu.Lock()
	var spans []call
	for _, c := range l.calls {
		if c.shard != shard && c.shard != "" {
			continue
		}
		c.start, c.end = later(c.start, from), earlier(c.end, to)
		if c.end.After(c.start) {
			spans = append(spans, c)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(spans, func(a, b call) int { return a.start.Compare(b.start) })
	var total time.Duration
	var cur call
	for i, c := range spans {
		switch {
		case i == 0:
			cur = c
		case !c.start.After(cur.end):
			cur.end = later(cur.end, c.end)
		default:
			total += cur.end.Sub(cur.start)
			cur = c
		}
	}
	if len(spans) > 0 {
		total += cur.end.Sub(cur.start)
	}
	return total
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// kinesisAPI is the calls of a worker in either retrieval mode.
type kinesisAPI interface {
	kcl.KinesisAPI
	kcl.FanOutAPI
	kcl.ConsumerAPI
}

// timedKinesis logs the reads of a worker in a callLog.
type timedKinesis struct {
	kinesisAPI
	log *callLog
}

func (k timedKinesis) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	start := time.Now()
	defer k.log.add(aws.ToString(in.ShardId), start) // until the initial response
	return k.kinesisAPI.SubscribeToShard(ctx, in, optFns...)
}

func (k timedKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	start := time.Now()
	out, err := k.kinesisAPI.GetShardIterator(ctx, in, optFns...)
	shard := aws.ToString(in.ShardId)
	k.log.add(shard, start)
	if err == nil {
		k.log.noteIterator(out.ShardIterator, shard)
	}
	return out, err
}

func (k timedKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	start := time.Now()
	out, err := k.kinesisAPI.GetRecords(ctx, in, optFns...)
	shard := k.log.shardOf(in.ShardIterator)
	if shard == "" {
		shard = "?" // not a shard of interest; never "", which means a scan
	}
	k.log.add(shard, start)
	if err == nil {
		k.log.noteIterator(out.NextShardIterator, shard)
	}
	return out, err
}

// timedDynamoDB logs a worker's lease table scans and lease writes in a
// callLog.
type timedDynamoDB struct {
	kcl.DynamoDBAPI
	log *callLog
}

func (d timedDynamoDB) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	start := time.Now()
	defer d.log.add("", start)
	return d.DynamoDBAPI.Scan(ctx, in, optFns...)
}

func (d timedDynamoDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	start := time.Now()
	key := "?"
	if v, ok := in.Key["leaseKey"].(*ddbtypes.AttributeValueMemberS); ok {
		key = v.Value
	}
	defer d.log.add(key, start)
	return d.DynamoDBAPI.UpdateItem(ctx, in, optFns...)
}

func TestIntegrationStreamByARN(t *testing.T) {
	e := newEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := e.kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config("by-arn")
	cfg.Stream = aws.ToString(sum.StreamDescriptionSummary.StreamARN)
	e.start(cfg)
	p := &producer{client: e.kinesis, stream: e.stream}
	p.put(t, 20, 2)
	wait.For(t, 30*time.Second, "every record", func() bool { return e.collector.distinct() >= p.total() })
	checkKeyOrder(t, e.collector.snapshot(), p.count)
}

func TestIntegrationMissingStreamFailsRun(t *testing.T) {
	e := newEnv(t, 1)
	cfg := e.config("lonely")
	cfg.Stream = e.stream + "-missing"
	w, err := kcl.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = w.Run(ctx)
	var nf *kintypes.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), cfg.Stream) {
		t.Fatalf("Run = %v, want ResourceNotFoundException naming the stream", err)
	}
}

// A parent split while the application was down, and aged out of the
// retention period before it restarted, ends at once: its children's
// records are processed, none lost.
func TestIntegrationExpiredParentStartsChildren(t *testing.T) {
	e := newEnv(t, 1)
	p := &producer{client: e.kinesis, stream: e.stream}
	p.put(t, 10, 2)
	first := e.start(e.config("worker-a"))
	wait.For(t, 60*time.Second, "the parent's records", func() bool { return e.collector.distinct() >= p.total() })
	first.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	parent := splitFirst(t, e)
	before := p.total()
	p.put(t, 10, 3)
	if err := e.px.ExpireShard(ctx, e.stream, parent); err != nil {
		t.Fatal(err)
	}

	cfg := e.config("worker-b")
	e.start(cfg)
	// The restart takes the leases and reads the parent once; the children
	// then start within a ParentPollInterval.
	within := cfg.ParentPollInterval + 2*e.failover + 10*time.Second
	wait.For(t, within, "the children's records", func() bool { return e.collector.distinct() >= p.total() })
	if e.collector.distinct() != p.total() || p.total() <= before {
		t.Errorf("%d distinct records, want %d", e.collector.distinct(), p.total())
	}
	checkKeyOrder(t, e.collector.snapshot(), p.count)
	for _, l := range e.leases() {
		if l.Key == parent && !l.Finished() {
			t.Errorf("parent lease at %s, want SHARD_END", l.Checkpoint)
		}
	}
}
