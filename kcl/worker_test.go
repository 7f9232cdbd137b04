package kcl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/kinesisgo/kinesis/lease"
)

// recorder is a processor that records what it is given and checkpoints
// every batch.
type recorder struct {
	mu      sync.Mutex
	records []Record
	events  []string
	// fail, when set, is asked before each batch; an error fails it.
	fail func(ctx context.Context, b *Batch) error
	// noCheckpoint leaves batches uncheckpointed.
	noCheckpoint bool
	// shutdownCheckpoint checkpoints in ShutdownRequested.
	shutdownCheckpoint bool
}

func (r *recorder) event(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) Initialize(_ context.Context, in *InitializeInput) error {
	r.event("init %s %s/%d", in.ShardID, in.Checkpoint, in.CheckpointSubSequenceNumber)
	return nil
}

func (r *recorder) ProcessRecords(ctx context.Context, b *Batch) error {
	if r.fail != nil {
		if err := r.fail(ctx, b); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.records = append(r.records, b.Records...)
	r.mu.Unlock()
	if r.noCheckpoint {
		return nil
	}
	return b.Checkpoint(ctx)
}

func (r *recorder) LeaseLost(_ context.Context, in *LeaseLostInput) { r.event("lost %s", in.ShardID) }

func (r *recorder) ShardEnded(_ context.Context, in *ShardEndedInput) error {
	r.event("ended %s", in.ShardID)
	return nil
}

func (r *recorder) ShutdownRequested(ctx context.Context, in *ShutdownRequestedInput) error {
	r.event("shutdown %s", in.ShardID)
	if r.shutdownCheckpoint {
		return in.Checkpointer.CheckpointProcessed(ctx)
	}
	return nil
}

func (r *recorder) snapshot() ([]Record, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records), slices.Clone(r.events)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records)
}

func (r *recorder) hasEvent(e string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.events, e)
}

// leakCheck verifies, after every cleanup of the test (workers stopped),
// that no goroutine the test started is left. Goroutines alive when the test
// begins are not its own: integration tests of this package leave the SDK
// clients' idle keep-alive connections (two goroutines each) behind, and
// with -count or -shuffle they are still there when a unit test ends.
func leakCheck(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// distinct counts the distinct user records r received.
func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, rec := range r.records {
		seen[fmt.Sprintf("%s/%d", rec.SequenceNumber, rec.SubSequenceNumber)] = true
	}
	return len(seen)
}

// waitBalanced waits until the workers hold want leases each.
func waitBalanced(t *testing.T, want []int, ws ...*Worker) {
	t.Helper()
	wait.For(t, 10*time.Second, fmt.Sprintf("leases balanced %v", want), func() bool {
		var got []int
		for _, w := range ws {
			got = append(got, len(w.coord.Held()))
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}

// testStream is the stream that unitConfig's workers read.
const testStream = "stream"

func unitConfig(t *testing.T, fk *kinesistest.Stream, store lease.Store, proc RecordProcessor) Config {
	return Config{
		Stream: testStream, App: "app", Kinesis: fk, LeaseStore: store, Processor: proc,
		InitialPosition:    checkpoint.TrimHorizon,
		Lease:              LeaseConfig{FailoverTime: 900 * time.Millisecond, TakeInterval: 100 * time.Millisecond},
		Retrieval:          RetrievalConfig{IdleWait: 20 * time.Millisecond},
		ParentPollInterval: 50 * time.Millisecond,
		ShardSyncInterval:  200 * time.Millisecond,
		ProcessBackoffBase: time.Millisecond, ProcessBackoffMax: 5 * time.Millisecond,
		Logger: zaptest.NewLogger(t),
	}
}

// startWorker runs a worker until the test ends (graceful shutdown).
func startWorker(t *testing.T, cfg Config) (*Worker, func()) {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return within 20s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

// keyOrder checks that per partition key the records appear in the order
// they were written (want), with nothing missing; duplicates are reported.
func keyOrder(t *testing.T, got []Record, want map[string][]string) (dups int) {
	t.Helper()
	byKey := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range got {
		id := fmt.Sprintf("%s/%d", r.SequenceNumber, r.SubSequenceNumber)
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		byKey[r.PartitionKey] = append(byKey[r.PartitionKey], id)
	}
	for k, w := range want {
		if !slices.Equal(byKey[k], w) {
			t.Errorf("key %s: got %v\nwant %v", k, byKey[k], w)
		}
	}
	return dups
}

func TestWorkerProcessesEveryRecordInKeyOrder(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 4)
	store := lease.NewMemoryStore()
	r := &recorder{}
	reg := prometheus.NewRegistry()
	cfg := unitConfig(t, fk, store, r)
	cfg.Metrics = reg
	w1, stop1 := startWorker(t, cfg)
	cfg2 := unitConfig(t, fk, store, r)
	cfg2.Metrics = reg
	w2, stop2 := startWorker(t, cfg2)
	// Records flow once the leases are balanced: a lease stolen while its
	// shard is processed is a hand-off that may duplicate a batch.
	waitBalanced(t, []int{2, 2}, w1, w2)
	m := newMetrics(reg) // the collectors the workers registered
	// A shard whose lease was stolen leaves the gauge when its goroutine
	// has stopped, a moment after the coordinator let the lease go.
	wait.For(t, 10*time.Second, "kinesis_kcl_leases_held at 4 (two workers with two each)", func() bool {
		return testutil.ToFloat64(m.shards) == 4
	})
	want := map[string][]string{}
	for i := range 400 {
		k := fmt.Sprintf("key-%d", i%37)
		_, seq := put(t, fk, k, []byte(fmt.Sprint(i)))
		want[k] = append(want[k], seq+"/0")
	}
	wait.For(t, 10*time.Second, "400 records", func() bool { return r.distinct() >= 400 })
	if n := testutil.CollectAndCount(m.millisBehind); n != 4 {
		t.Errorf("kinesis_kcl_millis_behind_latest has %d shards, want 4", n)
	}
	stop1()
	stop2()
	if v := testutil.ToFloat64(m.shards); v != 0 {
		t.Errorf("kinesis_kcl_leases_held = %v after shutdown, want 0", v)
	}
	got, _ := r.snapshot()
	if dups := keyOrder(t, got, want); dups != 0 {
		t.Errorf("%d duplicates without any failure", dups)
	}
	if v := testutil.ToFloat64(m.records); v != 400 {
		t.Errorf("kinesis_kcl_records_processed_total = %v, want 400", v)
	}
	// Every lease was checkpointed and released on the way out.
	leases, _ := store.List(context.Background())
	for _, l := range leases {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %s after shutdown", l.Key, l.Owner)
		}
		if l.Checkpoint == string(checkpoint.TrimHorizon) {
			t.Errorf("lease %s never checkpointed", l.Key)
		}
	}
}

func TestWorkerSplitAndMergeKeepParentBeforeChild(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 4)
	want := map[string][]string{}
	write := func(n int) {
		for i := range n {
			k := fmt.Sprintf("key-%d", i%23)
			_, seq := put(t, fk, k, []byte("x"))
			want[k] = append(want[k], seq+"/0")
		}
	}
	r := &recorder{}
	store := lease.NewMemoryStore()
	w1, _ := startWorker(t, unitConfig(t, fk, store, r))
	w2, _ := startWorker(t, unitConfig(t, fk, store, r))
	waitBalanced(t, []int{2, 2}, w1, w2)
	write(100)
	wait.For(t, 10*time.Second, "first records", func() bool { return r.distinct() >= 100 })
	a, b := split(t, fk, "shardId-000000000000")
	c := merge(t, fk, "shardId-000000000002", "shardId-000000000003")
	write(100)
	wait.For(t, 15*time.Second, "all 200 records", func() bool { return r.distinct() >= 200 })
	got, events := r.snapshot()
	// Leases may move between the workers as children appear (a steal
	// duplicates at most the batch in flight), so duplicates are allowed;
	// the first delivery of each record must be in order per key.
	dups := keyOrder(t, got, want)
	t.Logf("%d duplicates", dups)
	for _, e := range []string{"ended shardId-000000000000", "ended shardId-000000000002", "ended shardId-000000000003",
		"init " + a + " TRIM_HORIZON/0", "init " + b + " TRIM_HORIZON/0", "init " + c + " TRIM_HORIZON/0"} {
		if !slices.Contains(events, e) {
			t.Errorf("missing event %q in %v", e, events)
		}
	}
	// A child starts only after its parents ended.
	idx := func(e string) int { return slices.Index(events, e) }
	if idx("init "+c+" TRIM_HORIZON/0") < max(idx("ended shardId-000000000002"), idx("ended shardId-000000000003")) {
		t.Errorf("merged child initialized before both parents ended: %v", events)
	}
	if idx("init "+a+" TRIM_HORIZON/0") < idx("ended shardId-000000000000") {
		t.Errorf("split child initialized before its parent ended: %v", events)
	}
	if l, err := store.Get(context.Background(), "shardId-000000000000"); err == nil && !slices.Equal(l.ChildShardIDs, []string{a, b}) {
		t.Errorf("split parent's childShardIds = %v, want [%s %s]", l.ChildShardIDs, a, b)
	}
	if l, err := store.Get(context.Background(), "shardId-000000000002"); err == nil && !slices.Equal(l.ChildShardIDs, []string{c}) {
		t.Errorf("merged parent's childShardIds = %v, want [%s]", l.ChildShardIDs, c)
	}
	wait.For(t, 5*time.Second, "parents at SHARD_END", func() bool {
		for _, p := range []string{"shardId-000000000000", "shardId-000000000002", "shardId-000000000003"} {
			l, err := store.Get(context.Background(), p)
			if err == nil && l.Checkpoint != string(checkpoint.ShardEnd) {
				return false
			}
		}
		return true
	})
}

// aggregate writes one KPL aggregated record of n user records to a shard.
func aggregate(t *testing.T, fk *kinesistest.Stream, shardID string, n int) string {
	var e aggregation.Encoder
	for i := range n {
		e.Add(aggregation.Record{PartitionKey: fmt.Sprintf("user-%d", i), Data: []byte(fmt.Sprintf("payload-%d", i))})
	}
	return putTo(t, fk, shardID, "a", e.Encode())
}

func TestWorkerResumesInsideAggregatedRecord(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	seqPlain := putTo(t, fk, shard, "p", []byte("plain"))
	seqAgg := aggregate(t, fk, shard, 5)
	seqAfter := putTo(t, fk, shard, "q", []byte("after"))
	store := lease.NewMemoryStore()
	// A previous owner processed the plain record and the aggregated one up
	// to sub-record 2, then died without releasing.
	if _, err := store.Create(context.Background(), lease.Lease{Key: shard, Owner: "dead-worker", Counter: 7, Checkpoint: seqAgg, CheckpointSubSequence: 2}); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	startWorker(t, unitConfig(t, fk, store, r))
	wait.For(t, 10*time.Second, "the records after the checkpoint", func() bool { return r.count() >= 3 })
	got, events := r.snapshot()
	var ids []string
	for _, rec := range got {
		ids = append(ids, fmt.Sprintf("%s/%d:%s", rec.SequenceNumber, rec.SubSequenceNumber, rec.Data))
	}
	want := []string{seqAgg + "/3:payload-3", seqAgg + "/4:payload-4", seqAfter + "/0:after"}
	if !slices.Equal(ids, want) {
		t.Fatalf("delivered %v\nwant %v (plain record %s and sub-records 0..2 skipped)", ids, want, seqPlain)
	}
	if !got[0].Aggregated || got[0].PartitionKey != "user-3" || got[2].Aggregated {
		t.Errorf("record fields wrong: %+v", got)
	}
	if !slices.Contains(events, fmt.Sprintf("init %s %s/2", shard, seqAgg)) {
		t.Errorf("Initialize did not get the checkpoint: %v", events)
	}
}

// The error policies run in a synctest bubble: backoffs take no time, and
// the negative check of StopShard waits a minute of the bubble's clock.
func TestWorkerProcessErrorPolicies(t *testing.T) {
	for _, tc := range []struct {
		action   ErrorAction
		failures int // failures of the first batch
	}{
		{RetryForever, 5}, {RetryThenSkip, 100}, {StopShard, 100},
	} {
		t.Run(tc.action.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := newStream(t, testStream, 1)
				const shard = "shardId-000000000000"
				first := putTo(t, fk, shard, "k", []byte("poison"))
				store := lease.NewMemoryStore()
				var mu sync.Mutex
				attempts := 0
				r := &recorder{fail: func(_ context.Context, b *Batch) error {
					mu.Lock()
					defer mu.Unlock()
					if b.Records[0].SequenceNumber == first {
						attempts++
						if attempts <= tc.failures {
							return errors.New("processing failed")
						}
					}
					return nil
				}}
				reg := prometheus.NewRegistry()
				cfg := unitConfig(t, fk, store, r)
				cfg.Metrics = reg
				cfg.OnProcessError = tc.action
				switch tc.action {
				case RetryThenSkip:
					cfg.ProcessRetries = 2
				case StopShard: // no retries to space
					cfg.ProcessBackoffBase, cfg.ProcessBackoffMax = 0, 0
				}
				_, stop := startWorker(t, cfg)
				m := newMetrics(reg)
				switch tc.action {
				case RetryForever:
					wait.For(t, 10*time.Second, "the poison record to succeed", func() bool { return r.count() == 1 })
					if got := testutil.ToFloat64(m.processErrors); got != 5 {
						t.Errorf("process errors = %v, want 5", got)
					}
				case RetryThenSkip:
					wait.For(t, 10*time.Second, "the first failure", func() bool { return testutil.ToFloat64(m.processErrors) >= 1 })
					second := putTo(t, fk, shard, "k", []byte("good"))
					wait.For(t, 10*time.Second, "the next record", func() bool { return r.count() == 1 })
					got, _ := r.snapshot()
					if got[0].SequenceNumber != second {
						t.Errorf("processed %s, want %s", got[0].SequenceNumber, second)
					}
					if v := testutil.ToFloat64(m.skipped); v != 1 {
						t.Errorf("skipped = %v, want 1", v)
					}
					mu.Lock()
					if attempts != 3 {
						t.Errorf("attempts = %d, want 1 + ProcessRetries (2)", attempts)
					}
					mu.Unlock()
				case StopShard:
					wait.For(t, 10*time.Second, "the first failure", func() bool { return testutil.ToFloat64(m.processErrors) >= 1 })
					putTo(t, fk, shard, "k", []byte("good"))
					// Negative check: the shard stays stopped (a minute of the
					// bubble's time; other policies retry within milliseconds).
					time.Sleep(time.Minute)
					mu.Lock()
					n := attempts
					mu.Unlock()
					if n != 1 || r.count() != 0 {
						t.Errorf("attempts = %d, processed = %d after StopShard; want 1 and 0", n, r.count())
					}
					stop()
					l, _ := store.Get(context.Background(), shard)
					if l.Owner != "" {
						t.Errorf("stopped shard's lease still owned by %q after shutdown", l.Owner)
					}
				}
			})
		})
	}
}

func TestWorkerLeaseLostStopsShard(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	putTo(t, fk, shard, "k", []byte("one"))
	store := lease.NewMemoryStore()
	type result struct {
		cancelled     bool
		checkpointErr error
	}
	inFlight := make(chan struct{})
	res := make(chan result, 1)
	r := &recorder{}
	r.fail = func(pctx context.Context, b *Batch) error {
		if string(b.Records[0].Data) != "two" {
			return nil
		}
		close(inFlight)
		ctx := context.Background()
		var out result
		select {
		case <-pctx.Done():
			out.cancelled = true
		case <-time.After(10 * time.Second):
		}
		out.checkpointErr = b.Checkpoint(ctx)
		res <- out
		return out.checkpointErr
	}
	w, _ := startWorker(t, unitConfig(t, fk, store, r))
	wait.For(t, 10*time.Second, "the first record", func() bool { return r.count() == 1 })
	putTo(t, fk, shard, "k", []byte("two"))
	<-inFlight
	// Another worker steals the lease while the batch is processed.
	l, err := store.Get(context.Background(), shard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Take(context.Background(), l, "thief"); err != nil {
		t.Fatal(err)
	}
	out := <-res
	if !out.cancelled {
		t.Errorf("ProcessRecords' context was not cancelled when the lease was lost")
	}
	if !errors.Is(out.checkpointErr, lease.ErrLeaseLost) {
		t.Errorf("checkpoint after the lease was lost = %v, want ErrLeaseLost", out.checkpointErr)
	}
	wait.For(t, 10*time.Second, "LeaseLost", func() bool { return r.hasEvent("lost " + shard) })
	wait.For(t, 5*time.Second, "the shard goroutine to end", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.shards) == 0
	})
	l, _ = store.Get(context.Background(), shard)
	if l.Owner != "thief" || l.Checkpoint == string(checkpoint.TrimHorizon) {
		t.Errorf("lease = owner %q checkpoint %s; want thief, and the first batch's checkpoint kept", l.Owner, l.Checkpoint)
	}
}

func TestWorkerGracefulShutdownHandsOver(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 2)
	for i := range 20 {
		put(t, fk, fmt.Sprint(i), []byte("x"))
	}
	store := lease.NewMemoryStore()
	r1 := &recorder{noCheckpoint: true, shutdownCheckpoint: true}
	w1, _ := startWorker(t, unitConfig(t, fk, store, r1))
	wait.For(t, 10*time.Second, "20 records", func() bool { return r1.count() == 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w1.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_, events := r1.snapshot()
	leases, _ := store.List(context.Background())
	for _, l := range leases {
		if !slices.Contains(events, "shutdown "+l.Key) {
			t.Errorf("ShutdownRequested not called for %s: %v", l.Key, events)
		}
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %s", l.Key, l.Owner)
		}
		if l.Checkpoint == string(checkpoint.TrimHorizon) {
			t.Errorf("lease %s not checkpointed in ShutdownRequested", l.Key)
		}
	}
	// A second worker continues after the checkpoints: nothing is redelivered.
	r2 := &recorder{}
	startWorker(t, unitConfig(t, fk, store, r2))
	_, seq := put(t, fk, "late", []byte("y"))
	wait.For(t, 10*time.Second, "the late record", func() bool { return r2.count() >= 1 })
	got, _ := r2.snapshot()
	if len(got) != 1 || got[0].SequenceNumber != seq {
		t.Errorf("second worker got %d records (first %v), want only the late one", len(got), got[0].SequenceNumber)
	}
	if err := w1.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestWorkerAbortLeavesLeasesOwned(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	put(t, fk, "k", []byte("x"))
	store := lease.NewMemoryStore()
	r := &recorder{}
	cfg := unitConfig(t, fk, store, r)
	cfg.AbortOnCancel = true
	w, stop := startWorker(t, cfg)
	wait.For(t, 10*time.Second, "the record", func() bool { return r.count() == 1 })
	stop()
	_, events := r.snapshot()
	for _, e := range events {
		if e != "init shardId-000000000000 TRIM_HORIZON/0" {
			t.Errorf("unexpected processor call on abort: %s", e)
		}
	}
	l, _ := store.Get(context.Background(), "shardId-000000000000")
	if l.Owner != w.WorkerID() {
		t.Errorf("owner after abort = %q, want %q (left to expire)", l.Owner, w.WorkerID())
	}
	if err := w.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

func TestCheckpointerRejectsBadCheckpoints(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	s1 := putTo(t, fk, "shardId-000000000000", "k", []byte("x"))
	store := lease.NewMemoryStore()
	errc := make(chan [2]error, 1)
	r := &recorder{fail: func(_ context.Context, b *Batch) error {
		beyond := b.Checkpointer.CheckpointAt(context.Background(), s1+"0", 0)
		bad := b.Checkpointer.CheckpointAt(context.Background(), "not-a-number", 0)
		select {
		case errc <- [2]error{beyond, bad}:
		default:
		}
		return nil
	}}
	startWorker(t, unitConfig(t, fk, store, r))
	var errs [2]error
	select {
	case errs = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("no batch delivered")
	}
	if !errors.Is(errs[0], checkpoint.ErrBeyondDelivered) {
		t.Errorf("checkpoint past the batch = %v, want ErrBeyondDelivered", errs[0])
	}
	if !errors.Is(errs[1], checkpoint.ErrInvalid) {
		t.Errorf("checkpoint of a bad sequence number = %v, want ErrInvalid", errs[1])
	}
}

func TestWorkerRetakesLostLease(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	putTo(t, fk, shard, "k", []byte("one"))
	store := lease.NewMemoryStore()
	r := &recorder{}
	startWorker(t, unitConfig(t, fk, store, r))
	wait.For(t, 10*time.Second, "the first record", func() bool { return r.count() == 1 })
	l, _ := store.Get(context.Background(), shard)
	stolen, err := store.Take(context.Background(), l, "thief")
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "LeaseLost", func() bool { return r.hasEvent("lost " + shard) })
	if _, err := store.Release(context.Background(), stolen); err != nil {
		t.Fatal(err)
	}
	seq := putTo(t, fk, shard, "k", []byte("two"))
	wait.For(t, 10*time.Second, "the record written after the lease came back", func() bool { return r.count() == 2 })
	got, events := r.snapshot()
	if got[1].SequenceNumber != seq {
		t.Errorf("second record %s, want %s", got[1].SequenceNumber, seq)
	}
	if n := len(slices.DeleteFunc(events, func(e string) bool { return !strings.HasPrefix(e, "init ") })); n != 2 {
		t.Errorf("Initialize called %d times, want 2 (once per acquisition): %v", n, events)
	}
}

func TestWorkerNewProcessorPerShard(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 3)
	for i := range 30 {
		put(t, fk, fmt.Sprint(i), []byte("x"))
	}
	var mu sync.Mutex
	made := map[string]*recorder{}
	cfg := unitConfig(t, fk, lease.NewMemoryStore(), nil)
	cfg.Processor = nil
	cfg.NewProcessor = func(shardID string) RecordProcessor {
		mu.Lock()
		defer mu.Unlock()
		r := &recorder{}
		made[shardID] = r
		return r
	}
	startWorker(t, cfg)
	wait.For(t, 10*time.Second, "30 records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range made {
			n += r.count()
		}
		return n == 30
	})
	mu.Lock()
	defer mu.Unlock()
	if len(made) != 3 {
		t.Fatalf("processors made for %d shards, want 3", len(made))
	}
	for shard, r := range made {
		got, _ := r.snapshot()
		for _, rec := range got {
			if rec.ShardID != shard {
				t.Errorf("processor of %s got a record of %s", shard, rec.ShardID)
			}
		}
	}
}

func TestWorkerStartsAtTimestamp(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	putTo(t, fk, shard, "k", []byte("old"))
	wait.For(t, time.Second, "the clock to move", func() bool {
		return time.Since(fk.Records(shard)[0].ArrivalTime) > time.Millisecond
	})
	from := time.Now()
	seq := putTo(t, fk, shard, "k", []byte("new"))
	r := &recorder{}
	cfg := unitConfig(t, fk, lease.NewMemoryStore(), r)
	cfg.InitialPosition, cfg.InitialTimestamp = checkpoint.AtTimestamp, from
	startWorker(t, cfg)
	wait.For(t, 10*time.Second, "a record", func() bool { return r.count() >= 1 })
	got, _ := r.snapshot()
	if len(got) != 1 || got[0].SequenceNumber != seq {
		t.Fatalf("got %d records (first %s), want only %s written after the timestamp", len(got), got[0].SequenceNumber, seq)
	}
}

// A graceful shutdown while a batch keeps failing: ShutdownRequested's
// checkpoint covers the batches that succeeded, not the failing one, and
// ShutdownTimeout bounds a ShutdownRequested that would block: in a
// synctest bubble, exactly.
func TestWorkerShutdownWhileBatchFails(t *testing.T) {
	synctest.Test(t, testWorkerShutdownWhileBatchFails)
}

func testWorkerShutdownWhileBatchFails(t *testing.T) {
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	good := putTo(t, fk, shard, "k", []byte("good"))
	store := lease.NewMemoryStore()
	var shutdownErr, cpErr error
	var blockedUntil time.Duration
	done := make(chan struct{})
	p := &funcProcessor{
		process: func(ctx context.Context, b *Batch) error {
			if string(b.Records[0].Data) == "bad" {
				return errors.New("cannot process")
			}
			return nil // no checkpoint
		},
		shutdown: func(ctx context.Context, in *ShutdownRequestedInput) error {
			cpErr = in.Checkpointer.CheckpointProcessed(ctx)
			start := time.Now()
			<-ctx.Done() // a processor that waits for its deadline
			blockedUntil = time.Since(start)
			shutdownErr = ctx.Err()
			close(done)
			return ctx.Err()
		},
	}
	cfg := unitConfig(t, fk, store, p)
	cfg.ShutdownTimeout = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	_, stop := startWorker(t, cfg)
	m := newMetrics(reg)
	wait.For(t, 10*time.Second, "the good record", func() bool { return testutil.ToFloat64(m.records) == 1 })
	putTo(t, fk, shard, "k", []byte("bad"))
	wait.For(t, 10*time.Second, "the bad batch failing", func() bool { return testutil.ToFloat64(m.processErrors) >= 2 })
	stop()
	<-done
	if cpErr != nil {
		t.Errorf("checkpoint in ShutdownRequested: %v", cpErr)
	}
	// At the ShutdownTimeout the context ends either by its own deadline or
	// by the worker stopping the shards that are still running, whichever
	// fires first: both are the timeout.
	if shutdownErr == nil || blockedUntil != cfg.ShutdownTimeout {
		t.Errorf("ShutdownRequested's context ended with %v after %v; want the 300ms ShutdownTimeout", shutdownErr, blockedUntil)
	}
	l, _ := store.Get(context.Background(), shard)
	if l.Checkpoint != good {
		t.Errorf("checkpoint = %s, want %s (the good record; the failing one is not processed)", l.Checkpoint, good)
	}
	if l.Owner != "" {
		t.Errorf("lease owned by %q after the shutdown, want released", l.Owner)
	}
}

// funcProcessor is a RecordProcessor made of functions.
type funcProcessor struct {
	process  func(ctx context.Context, b *Batch) error
	shutdown func(ctx context.Context, in *ShutdownRequestedInput) error
}

func (p *funcProcessor) Initialize(context.Context, *InitializeInput) error { return nil }
func (p *funcProcessor) ProcessRecords(ctx context.Context, b *Batch) error {
	return p.process(ctx, b)
}
func (p *funcProcessor) LeaseLost(context.Context, *LeaseLostInput)         {}
func (p *funcProcessor) ShardEnded(context.Context, *ShardEndedInput) error { return nil }
func (p *funcProcessor) ShutdownRequested(ctx context.Context, in *ShutdownRequestedInput) error {
	return p.shutdown(ctx, in)
}

// leaseChildren creates the leases of a closed shard's children in store,
// as a shard sync that lists them creates them (checkpoint TRIM_HORIZON,
// the child's parents and hash key range). The shard sync of a worker
// that starts at TRIM_HORIZON lists the shards open at the trim horizon
// (ShardFilter AT_TRIM_HORIZON), not their children: those are leased
// when their parent ends, unless the table has them already.
func leaseChildren(t *testing.T, fk *kinesistest.Stream, store lease.Store, parent string) {
	t.Helper()
	out, err := fk.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(fk.Name())})
	if err != nil {
		t.Fatal(err)
	}
	var children []types.ChildShard
	for _, sh := range out.Shards {
		var parents []string
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if p != nil {
				parents = append(parents, *p)
			}
		}
		if slices.Contains(parents, parent) {
			children = append(children, types.ChildShard{ShardId: sh.ShardId, ParentShards: parents, HashKeyRange: sh.HashKeyRange})
		}
	}
	if len(children) == 0 {
		t.Fatalf("shard %s has no children", parent)
	}
	if err := lease.CreateChildLeases(context.Background(), store, children); err != nil {
		t.Fatal(err)
	}
}

// Children whose leases exist before their parent ends start on an
// in-process notice when the parent ends, not at the next parent poll.
func TestWorkerChildStartsOnParentEndNotice(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const parent = "shardId-000000000000"
	for i := range 20 {
		putTo(t, fk, parent, fmt.Sprint(i), []byte("before"))
	}
	a, b := split(t, fk, parent)
	seqA := putTo(t, fk, a, "k", []byte("child"))
	store := lease.NewMemoryStore()
	leaseChildren(t, fk, store, parent)
	release := make(chan struct{})
	r := &recorder{fail: func(ctx context.Context, b *Batch) error {
		if b.ShardID == parent {
			select { // the parent's processing waits until the children are held
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}}
	cfg := unitConfig(t, fk, store, r)
	cfg.ParentPollInterval = time.Hour // only the notice can wake the children
	cfg.Retrieval.MaxRecords = 5       // several batches for the parent
	w, _ := startWorker(t, cfg)
	wait.For(t, 10*time.Second, "the children's leases held while the parent is processed", func() bool {
		return slices.Equal(w.Shards(), []string{parent, a, b})
	})
	close(release)
	wait.For(t, 10*time.Second, "the child's record", func() bool { return r.count() == 21 })
	got, events := r.snapshot()
	if got[20].SequenceNumber != seqA {
		t.Errorf("last record %s, want the child's %s after the parent's 20", got[20].SequenceNumber, seqA)
	}
	if i, j := slices.Index(events, "ended "+parent), slices.Index(events, "init "+b+" TRIM_HORIZON/0"); i < 0 || j < i {
		t.Errorf("events %v: want the children initialized after the parent ended", events)
	}
}

func TestWorkerDoesNotReadFinishedShard(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	putTo(t, fk, shard, "k", []byte("done long ago"))
	store := lease.NewMemoryStore()
	r := &recorder{}
	cfg := unitConfig(t, fk, store, r)
	cfg.InitialPosition = checkpoint.Latest
	w, _ := startWorker(t, cfg)
	wait.For(t, 10*time.Second, "the shard started", func() bool { return r.hasEvent("init " + shard + " LATEST/0") })
	// As if the coordinator handed over a lease at SHARD_END.
	w.acquired(lease.Lease{Key: "shardId-000000000099", Owner: w.WorkerID(), Checkpoint: string(checkpoint.ShardEnd)})
	wait.For(t, 5*time.Second, "the finished shard to be dropped", func() bool { return !slices.Contains(w.Shards(), "shardId-000000000099") })
	if !w.hasEnded("shardId-000000000099") {
		t.Errorf("finished shard not noted as ended")
	}
	if _, events := r.snapshot(); slices.ContainsFunc(events, func(e string) bool { return strings.Contains(e, "000099") }) {
		t.Errorf("processor called for a finished shard: %v", events)
	}
}

// A processor call still running after its lease was lost cannot
// checkpoint, also once the same worker has taken the lease again: the
// checkpoint would land on the new holding, ahead of where the new
// processor starts, and that one's checkpoints would then all fail as
// going backwards.
func TestWorkerStaleCheckpointAfterLeaseRetaken(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	putTo(t, fk, shard, "k", []byte("one"))
	store := lease.NewMemoryStore()
	inFlight := make(chan struct{})
	retaken := make(chan struct{})
	res := make(chan error, 1)
	var once sync.Once
	r := &recorder{}
	r.fail = func(pctx context.Context, b *Batch) error {
		if string(b.Records[0].Data) != "two" {
			return nil
		}
		first := false
		once.Do(func() { first = true })
		if !first {
			return nil
		}
		close(inFlight)
		<-retaken
		err := b.Checkpoint(context.Background())
		res <- err
		return err
	}
	w, _ := startWorker(t, unitConfig(t, fk, store, r))
	wait.For(t, 10*time.Second, "the first record", func() bool { return r.count() == 1 })
	putTo(t, fk, shard, "k", []byte("two"))
	<-inFlight
	l, err := store.Get(context.Background(), shard)
	if err != nil {
		t.Fatal(err)
	}
	stolen, err := store.Take(context.Background(), l, "thief")
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the loss noticed", func() bool { _, ok := w.coord.Lease(shard); return !ok })
	if _, err := store.Release(context.Background(), stolen); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the lease taken again", func() bool { _, ok := w.coord.Lease(shard); return ok })
	close(retaken)
	if err := <-res; !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("checkpoint of the lost holding after the lease was taken again = %v, want ErrLeaseLost", err)
	}
	putTo(t, fk, shard, "k", []byte("three"))
	wait.For(t, 10*time.Second, "the new holding processing and checkpointing", func() bool {
		l, _ := store.Get(context.Background(), shard)
		recs, _ := r.snapshot()
		return len(recs) >= 3 && string(recs[len(recs)-1].Data) == "three" && l.Checkpoint == recs[len(recs)-1].SequenceNumber
	})
}

// A lease taken again while the previous processing of its shard still
// runs starts the shard once that ends; if the lease is lost again
// meanwhile, the shard must not start at all: it would process a shard
// whose lease another worker holds.
func TestWorkerNoRestartAfterRetakenLeaseLostAgain(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	putTo(t, fk, shard, "k", []byte("one"))
	store := lease.NewMemoryStore()
	inFlight := make(chan struct{})
	unblock := make(chan struct{})
	var once sync.Once
	r := &recorder{}
	r.fail = func(pctx context.Context, b *Batch) error {
		if string(b.Records[0].Data) != "two" {
			return nil
		}
		first := false
		once.Do(func() { first = true })
		if first {
			close(inFlight)
			<-unblock
		}
		return nil
	}
	w, _ := startWorker(t, unitConfig(t, fk, store, r))
	var unblockOnce sync.Once
	release := func() { unblockOnce.Do(func() { close(unblock) }) }
	t.Cleanup(release) // before the worker stops, also when the test fails
	wait.For(t, 10*time.Second, "the first record", func() bool { return r.count() == 1 })
	putTo(t, fk, shard, "k", []byte("two"))
	<-inFlight
	steal := func() lease.Lease {
		t.Helper()
		l, err := store.Get(context.Background(), shard)
		if err != nil {
			t.Fatal(err)
		}
		stolen, err := store.Take(context.Background(), l, "thief")
		if err != nil {
			t.Fatal(err)
		}
		wait.For(t, 10*time.Second, "the loss noticed", func() bool { _, ok := w.coord.Lease(shard); return !ok })
		return stolen
	}
	stolen := steal()
	if _, err := store.Release(context.Background(), stolen); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the lease taken again, its start deferred", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		_, ok := w.restart[shard]
		return ok
	})
	w.coord.StopTaking() // the thief keeps it from now on
	steal()
	wait.For(t, 5*time.Second, "the deferred start dropped with the second loss", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		_, ok := w.restart[shard]
		return !ok
	})
	release()
	wait.For(t, 10*time.Second, "the first processing to end", func() bool { return r.hasEvent("lost " + shard) })
	w.mu.Lock()
	running := len(w.shards)
	w.mu.Unlock()
	if running != 0 {
		t.Fatalf("%d shard goroutines run although the thief holds the lease", running)
	}
}

// A graceful shutdown while the parent's batch is in processor backoff and
// its children wait for it: Shutdown returns promptly, every lease is
// released, the children were never initialized.
func TestWorkerShutdownWhileChildrenWaitAndParentBacksOff(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const parent = "shardId-000000000000"
	putTo(t, fk, parent, "k", []byte("x"))
	a, b := split(t, fk, parent)
	r := &recorder{fail: func(ctx context.Context, bt *Batch) error {
		if bt.ShardID == parent {
			return errors.New("downstream unavailable")
		}
		return nil
	}}
	store := lease.NewMemoryStore()
	leaseChildren(t, fk, store, parent)
	cfg := unitConfig(t, fk, store, r)
	cfg.ProcessBackoffBase, cfg.ProcessBackoffMax = time.Hour, time.Hour
	w, _ := startWorker(t, cfg)
	wait.For(t, 10*time.Second, "all three leases held", func() bool { return slices.Equal(w.Shards(), []string{parent, a, b}) })
	wait.For(t, 10*time.Second, "the parent's batch failing", func() bool { return r.hasEvent("init " + parent + " TRIM_HORIZON/0") })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ls, _ := store.List(context.Background())
	for _, l := range ls {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %s", l.Key, l.Owner)
		}
		if l.Key == parent && l.Finished() {
			t.Errorf("parent checkpointed at SHARD_END although its batch failed")
		}
	}
	if r.hasEvent("init "+a+" TRIM_HORIZON/0") || r.hasEvent("init "+b+" TRIM_HORIZON/0") {
		t.Errorf("a child was initialized before its parent ended")
	}
}

// blockingStore is a memory lease table whose EnsureTable runs ensure.
type blockingStore struct {
	*lease.MemoryStore
	ensure func(ctx context.Context) error
}

func (s *blockingStore) EnsureTable(ctx context.Context) error {
	if s.ensure != nil {
		return s.ensure(ctx)
	}
	return s.MemoryStore.EnsureTable(ctx)
}

// Shutdown during startup (the lease table being created, the first shard
// sync) stops the worker at once, and returns by its context's deadline
// even when a call in flight ignores its context; Run returns when that
// call does.
func TestShutdownDuringStartup(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		blockTable, blockList bool
		ignoresCtx            bool
	}{
		{"creating the lease table", true, false, false},
		{"first shard sync", false, true, false},
		{"a call that ignores its context", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				unblock := make(chan struct{})
				block := func(ctx context.Context) error {
					if tc.ignoresCtx {
						<-unblock
						return errors.New("too late")
					}
					<-ctx.Done()
					return ctx.Err()
				}
				store := &blockingStore{MemoryStore: lease.NewMemoryStore()}
				if tc.blockTable {
					store.ensure = block
				}
				kin := newStreamOf(t, kinesistest.Config{StreamName: "s", Fault: func(ctx context.Context, c kinesistest.Call) error {
					if tc.blockList && c.Op == kinesistest.OpListShards {
						return block(ctx)
					}
					return nil
				}})
				w, err := New(Config{Stream: "s", App: "a", Kinesis: kin, LeaseStore: store, Processor: &recorder{}})
				if err != nil {
					t.Fatal(err)
				}
				runErr := make(chan error, 1)
				go func() { runErr <- w.Run(context.Background()) }()
				synctest.Wait() // Run is blocked in the call

				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				err = w.Shutdown(ctx)
				took := time.Since(start)
				if tc.ignoresCtx {
					if !errors.Is(err, context.DeadlineExceeded) || took != 5*time.Second {
						t.Errorf("Shutdown = %v after %v, want its deadline's error after 5s", err, took)
					}
					select {
					case err := <-runErr:
						t.Fatalf("Run returned (%v) while its call was in flight", err)
					default:
					}
					close(unblock)
				} else if err != nil || took != 0 {
					t.Errorf("Shutdown = %v after %v, want nil at once", err, took)
				}
				if err := <-runErr; err != nil {
					t.Errorf("Run = %v, want nil after a shutdown", err)
				}
				if ls, _ := store.List(context.Background()); slices.ContainsFunc(ls, func(l lease.Lease) bool { return l.Owner != "" }) {
					t.Errorf("leases taken by a worker shut down during startup: %+v", ls)
				}
			})
		})
	}
}

// The loss of a holding reported after the next holding of the same lease
// was acquired stops the earlier processing only: the start deferred for
// the next holding stays, and a processing of the next holding goes on.
func TestLateLossOfEarlierHolding(t *testing.T) {
	const key = "shardId-000000000000"
	var stopped []int64
	shard := func(counter int64) *shardWorker {
		return &shardWorker{lease: lease.Lease{Key: key, Counter: counter}, cancel: func(error) { stopped = append(stopped, counter) }}
	}
	w := &Worker{runCtx: context.Background(), shards: map[string]*shardWorker{}, restart: map[string]lease.Lease{}}

	w.shards[key] = shard(5)                      // processing the first holding
	w.acquired(lease.Lease{Key: key, Counter: 9}) // the next one: deferred until that ends
	w.lost(lease.Lease{Key: key, Counter: 7})     // the first holding's loss, reported late
	if _, ok := w.restart[key]; !ok || !slices.Equal(stopped, []int64{5}) {
		t.Fatalf("after a late loss: deferred start kept %v, stopped %v; want kept, [5]", ok, stopped)
	}
	w.lost(lease.Lease{Key: key, Counter: 10}) // the next holding lost too
	if _, ok := w.restart[key]; ok {
		t.Fatalf("deferred start kept after its own holding was lost")
	}

	stopped = nil
	w.shards[key] = shard(9)                  // processing the next holding
	w.lost(lease.Lease{Key: key, Counter: 7}) // a late loss of the first
	if len(stopped) != 0 {
		t.Fatalf("a late loss of an earlier holding stopped the processing of the next: %v", stopped)
	}
}
