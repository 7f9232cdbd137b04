package autoscale_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kinesisgo/kinesis/autoscale"
	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kpl"
)

// consumed is every user record a kcl application was given, in order.
type consumed struct {
	mu    sync.Mutex
	order []string       // "shard data-id", in delivery order
	seen  map[string]int // data id -> deliveries
}

func (c *consumed) processor() kcl.RecordProcessor {
	return kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
		c.mu.Lock()
		for _, r := range b.Records {
			id, _, _ := strings.Cut(string(r.Data), " ")
			c.order = append(c.order, b.ShardID+" "+id)
			c.seen[id]++
		}
		c.mu.Unlock()
		return b.Checkpoint(ctx)
	})
}

func (c *consumed) has(ids map[string]bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range ids {
		if c.seen[id] == 0 {
			return false
		}
	}
	return true
}

// hotKeys returns n partition keys whose hash keys lie below 2^124: the
// lowest sixteenth of the key space, inside the first of two shards.
func hotKeys(n int) []string {
	limit := hashkey.Key{Hi: 1 << 60}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("hot-%d", i)
		if hashkey.FromPartitionKey(k).Cmp(limit) < 0 {
			keys = append(keys, k)
		}
	}
	return keys
}

// writer puts 4 KiB records at a settable rate, nine in ten to the hot
// keys, and remembers those written and the bytes per partition key.
type writer struct {
	p        *kpl.Producer
	hot      []string
	rate     atomic.Int64 // bytes per second
	mu       sync.Mutex
	written  map[string]bool
	failed   int
	keyBytes map[string]int
}

const recordSize = 1 << 10

// scale divides AWS's per-shard write limits (1 MiB/s, 1,000 records/s) and
// the producer's rate alike, so that the test runs at what kinesis-mock
// takes on a shared machine (well under 1 MiB/s) with AWS's proportions:
// 1.6 MiB/s against 1 MiB/s shards becomes 102 KiB/s against 64 KiB/s, and
// the producer's aggregated records and rate limit shrink alike.
const scale = 16

func (w *writer) run(ctx context.Context) {
	start := time.Now()
	var sent, n int
	var putBytes float64
	last := start
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			// At most one tick's worth at a time: after a stall of the
			// machine, the records not put are skipped rather than put
			// in one burst.
			rate := float64(w.rate.Load())
			putBytes = max(putBytes+rate*now.Sub(last).Seconds(), float64(sent)*recordSize)
			putBytes = min(putBytes, float64(sent)*recordSize+rate*0.05)
			last = now
		}
		for ; float64(sent)*recordSize < putBytes; sent++ {
			n++
			pk := fmt.Sprintf("cold-%d", n)
			if n%10 != 0 {
				pk = w.hot[n%len(w.hot)]
			}
			id := fmt.Sprintf("r%07d", n)
			data := []byte(id + " " + strings.Repeat(".", recordSize-len(pk)-len(id)-1))
			w.mu.Lock()
			w.keyBytes[pk] += len(data) + len(pk)
			w.mu.Unlock()
			err := w.p.Put(ctx, kpl.Record{PartitionKey: pk, Data: data}, func(r kpl.Result) {
				w.mu.Lock()
				defer w.mu.Unlock()
				if r.Err != nil {
					w.failed++
					return
				}
				w.written[id] = true
			})
			if err != nil {
				return // ctx ended
			}
		}
	}
}

func (w *writer) snapshot() (map[string]bool, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]bool, len(w.written))
	for id := range w.written {
		out[id] = true
	}
	return out, w.failed
}

// shareBelow is the share of the bytes written to keys in [start, end]
// that went to keys below at.
func (w *writer) shareBelow(start, end, at hashkey.Key) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var below, all float64
	for pk, n := range w.keyBytes {
		k := hashkey.FromPartitionKey(pk)
		if k.Cmp(start) < 0 || k.Cmp(end) > 0 {
			continue
		}
		all += float64(n)
		if k.Cmp(at) < 0 {
			below += float64(n)
		}
	}
	return below / all
}

// writeCounts sums the records written to and refused by the stream's
// shards over the seconds from start, as the proxy's limits counted them
// (CloudWatch IncomingRecords and WriteProvisionedThroughputExceeded).
func writeCounts(t *testing.T, cw *cloudwatch.Client, kc *kinesis.Client, stream string, start time.Time, d time.Duration) (throttled, accepted float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var queries []cwtypes.MetricDataQuery
	for i, sh := range shards.Shards {
		for _, m := range []string{"IncomingRecords", "WriteProvisionedThroughputExceeded"} {
			queries = append(queries, cwtypes.MetricDataQuery{Id: aws.String(fmt.Sprintf("%s%d", strings.ToLower(m[:1]), i)),
				MetricStat: &cwtypes.MetricStat{Period: aws.Int32(1), Stat: aws.String("Sum"), Metric: &cwtypes.Metric{
					Namespace: aws.String("AWS/Kinesis"), MetricName: aws.String(m), Dimensions: []cwtypes.Dimension{
						{Name: aws.String("StreamName"), Value: aws.String(stream)}, {Name: aws.String("ShardId"), Value: sh.ShardId}}}}})
		}
	}
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(start), EndTime: aws.Time(start.Add(d)), MetricDataQueries: queries})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.MetricDataResults {
		for _, v := range r.Values {
			if strings.HasPrefix(aws.ToString(r.Id), "w") {
				throttled += v
			} else {
				accepted += v
			}
		}
	}
	return throttled, accepted
}

// Through the proxy with AWS's write limits (scaled, see scale): a kpl
// producer writes 1.6 MiB/s, nine tenths to a sixteenth of the key space,
// into a 2-shard stream. The hot shard is split at its traffic median within two
// evaluations, throttling falls below 1 % of the entries, and a kcl
// application reading throughout loses nothing and reads parents before
// children; once the load drops, cold shards merge after the cool-down.
func TestScalerSplitsAtTheTrafficMedianAndMerges(t *testing.T) {
	t.Parallel()
	ep := testenv.Require(t)
	px := proxy.StartForTest(t, proxy.Config{ShardLifecycle: true,
		Limits: proxy.Limits{WriteBytesPerSecond: proxy.DefaultWriteBytesPerSecond / scale, WriteRecordsPerSecond: proxy.DefaultWriteRecordsPerSecond / scale}})
	kc := testenv.KinesisClientAt(t, px.URL())
	stream := testenv.CreateStream(t, kc, 2)
	_, table := testenv.NewTableName(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	c := &consumed{seen: map[string]int{}}
	worker, err := kcl.New(kcl.Config{
		Stream: stream, App: "autoscale", LeaseTable: table, Processor: c.processor(),
		InitialPosition: checkpoint.TrimHorizon,
		Kinesis:         testenv.KinesisClientAt(t, px.URL()), DynamoDB: testenv.DynamoDBClientAt(t, ep.DynamoDB),
		Lease:              kcl.LeaseConfig{FailoverTime: 3 * time.Second, TakeInterval: 600 * time.Millisecond},
		Retrieval:          kcl.RetrievalConfig{IdleWait: 200 * time.Millisecond},
		ParentPollInterval: 500 * time.Millisecond, ShardSyncInterval: 2 * time.Second, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	workerDone := make(chan error, 1)
	wctx, stopWorker := context.WithCancel(context.Background())
	go func() { workerDone <- worker.Run(wctx) }()
	defer func() {
		stopWorker()
		if err := <-workerDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("worker: %v", err)
		}
	}()

	producer, err := kpl.New(kpl.Config{Stream: stream, Kinesis: testenv.KinesisClientAt(t, px.URL()), Logger: log,
		RateLimit: kpl.DefaultRateLimit / scale, AggregationMaxSize: kpl.DefaultAggregationMaxSize / scale,
		// A buffer of about two seconds of records (half of the bound is
		// records), so that the backlog the hot shard builds, and the
		// throttling while the producer writes it, stay short.
		MaxBufferedBytes: 4 * 1600 << 10 / scale, MaxRecordSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{p: producer, hot: hotKeys(64), written: map[string]bool{}, keyBytes: map[string]int{}}
	w.rate.Store(1600 << 10 / scale)
	wctxP, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.run(wctxP) }()

	cw := cloudwatch.NewFromConfig(testenv.AWSConfig(t, px.URL()), func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(px.URL()) })
	const interval = 2 * time.Second
	s, err := autoscale.New(autoscale.Config{
		Stream: stream, Kinesis: kc, CloudWatch: cw, Logger: log,
		Interval: interval, Window: 4 * time.Second, Period: time.Second, SampleWindow: 3 * time.Second, SampleRecords: 300,
		Plan: autoscale.PlanConfig{Cooldown: 6 * time.Second, MergeAfter: 6 * time.Second, MaxShards: 3,
			ShardBytesPerSecond: autoscale.DefaultShardBytesPerSecond / scale, ShardRecordsPerSecond: autoscale.DefaultShardRecordsPerSecond / scale},
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		evMu  sync.Mutex
		evals []autoscale.Evaluation
	)
	evaluate := func() {
		ev, err := s.Once(ctx)
		if err != nil {
			t.Logf("evaluation: %v", err)
			return
		}
		evMu.Lock()
		evals = append(evals, ev)
		evMu.Unlock()
		var loads []string
		for _, u := range ev.Shards {
			loads = append(loads, fmt.Sprintf("%s %.0f%% (%.0f B/s, %.1f rec/s, %.1f throttled/s) complete=%v", u.ShardID, 100*u.Utilization, u.BytesPerSecond, u.RecordsPerSecond, u.ThrottledPerSecond, u.Complete))
		}
		t.Logf("evaluation: %s %s (%s): %s", ev.Action, ev.Shard, ev.Reason, strings.Join(loads, "; "))
	}
	find := func(action autoscale.Action) (autoscale.Evaluation, int, bool) {
		evMu.Lock()
		defer evMu.Unlock()
		for i, ev := range evals {
			if ev.Acted && ev.Action == action {
				return ev, i, true
			}
		}
		return autoscale.Evaluation{}, 0, false
	}
	// The scaler's loop (Run), one evaluation at a time, on the test's
	// goroutine so that each can be looked at.
	loopUntil := func(within time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within %s", what, within)
			}
			next := time.Now().Add(interval)
			evaluate()
			time.Sleep(time.Until(next)) // the scaler's evaluation interval, as Run waits it
		}
	}

	loopUntil(30*time.Second, "split", func() bool { _, _, ok := find(autoscale.Split); return ok })
	split, at, _ := find(autoscale.Split)
	evMu.Lock()
	completeBefore := 0
	for _, ev := range evals[:at] {
		for _, u := range ev.Shards {
			if u.ShardID == split.Shard && u.Complete {
				completeBefore++
			}
		}
	}
	evMu.Unlock()
	if split.Shard != "shardId-000000000000" || split.SplitBy != "median" {
		t.Errorf("split %s by %s, want the hot shard shardId-000000000000 at its traffic median", split.Shard, split.SplitBy)
	}
	if completeBefore > 1 {
		t.Errorf("split at the %d-th evaluation with complete metrics, want within two", completeBefore+1)
	}
	parent := hashkey.Range{Start: hashkey.Key{}, End: hashkey.MustParse("170141183460469231731687303715884105727")}
	splitAt := hashkey.MustParse(split.SplitAt)
	medianShare := w.shareBelow(parent.Start, parent.End, splitAt)
	midShare := w.shareBelow(parent.Start, parent.End, hashkey.Mid(parent.Start, parent.End))
	t.Logf("split %s at %s: %.1f%% of the parent's bytes below it (sample %.1f%%); the midpoint would leave %.1f%% below",
		split.Shard, split.SplitAt, 100*medianShare, 100*split.SampleBelow, 100*midShare)
	if medianShare < 0.35 || medianShare > 0.65 {
		t.Errorf("the median split leaves %.1f%% of the bytes in the first child, want about half", 100*medianShare)
	}

	// Throttling after the split, once the producer has written the backlog
	// it built up while the hot shard throttled it: while it does, the
	// children take writes at their limits.
	drained := func() bool {
		evMu.Lock()
		defer evMu.Unlock()
		last := evals[len(evals)-1]
		if len(last.Shards) != 3 {
			return false
		}
		for _, u := range last.Shards {
			if !u.Complete || u.Utilization >= 0.95 {
				return false
			}
		}
		return true
	}
	loopUntil(60*time.Second, "the producer to write its backlog", drained)
	measured := time.Now()
	loopUntil(30*time.Second, "10 s of traffic after the split", func() bool { return time.Since(measured) > 11*time.Second })
	throttled, accepted := writeCounts(t, cw, kc, stream, measured.Truncate(time.Second).Add(time.Second), 10*time.Second)
	frac := throttled / (throttled + accepted)
	t.Logf("after the split, from %s after it for 10 s: %.0f entries throttled, %.0f accepted (%.2f%%)", measured.Sub(split.Time).Round(time.Second), throttled, accepted, 100*frac)
	if accepted == 0 || frac >= 0.01 {
		t.Errorf("after the split %.2f%% of the entries were throttled, want below 1%%", 100*frac)
	}
	evMu.Lock()
	last := evals[len(evals)-1]
	evMu.Unlock()
	for _, u := range last.Shards {
		t.Logf("after the split: %s at %.0f%% (%.0f KiB/s, complete %v)", u.ShardID, 100*u.Utilization, u.BytesPerSecond/1024, u.Complete)
	}

	// The load drops: the cold shards merge after the cool-down.
	w.rate.Store(16 << 10 / scale)
	loopUntil(60*time.Second, "merge", func() bool { _, _, ok := find(autoscale.Merge); return ok })
	merge, _, _ := find(autoscale.Merge)
	t.Logf("merge %s and %s: %s", merge.Shard, merge.Adjacent, merge.Reason)
	stopWriter()
	<-writerDone
	if err := producer.Close(ctx); err != nil {
		t.Errorf("producer: %v", err)
	}

	// Nothing lost; parents read before their children.
	written, failed := w.snapshot()
	if failed > 0 {
		t.Errorf("%d records failed to be written", failed)
	}
	wait.For(t, 60*time.Second, fmt.Sprintf("the %d records written to be consumed", len(written)), func() bool { return c.has(written) })
	out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	first, lastAt := map[string]int{}, map[string]int{}
	for i, d := range c.order {
		sh, _, _ := strings.Cut(d, " ")
		if _, ok := first[sh]; !ok {
			first[sh] = i
		}
		lastAt[sh] = i
	}
	for _, sh := range out.Shards {
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if p == nil {
				continue
			}
			child := aws.ToString(sh.ShardId)
			if f, ok := first[child]; ok && f < lastAt[*p] {
				t.Errorf("child %s read (delivery %d) before its parent %s was finished (delivery %d)", child, f, *p, lastAt[*p])
			}
		}
	}
}
