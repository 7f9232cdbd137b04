package lanes_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kcl/lanes"
	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/lease"
)

const fakeShard = "shardId-000000000000"

// fake is a worker with lanes over an in-memory stream and lease table.
type fake struct {
	t      *testing.T
	stream *kinesistest.Stream
	store  *lease.MemoryStore
	seqs   []string // of the records put, in order
}

// newFake puts n records of keys key-0 ... key-(keys-1) (data "key#i") on
// a one-shard in-memory stream.
func newFake(t *testing.T, n, keys int) *fake {
	s, err := kinesistest.New(kinesistest.Config{StreamName: "s", Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{t: t, stream: s, store: lease.NewMemoryStore()}
	for i := range n {
		key := fmt.Sprintf("key-%d", i%keys)
		_, seq, err := s.Put(key, []byte(fmt.Sprintf("%s#%d", key, i)))
		if err != nil {
			t.Fatal(err)
		}
		f.seqs = append(f.seqs, seq)
	}
	return f
}

// run runs a worker with lanes cfg (and its Config changed by opts) until
// the returned stop (a graceful shutdown) or the end of the test.
func (f *fake) run(cfg lanes.Config, opts ...func(*kcl.Config)) (stop func()) {
	f.t.Helper()
	fac, err := lanes.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	kc := kcl.Config{
		Stream: "s", App: "app", Kinesis: f.stream, LeaseStore: f.store, NewProcessor: fac.NewProcessor,
		InitialPosition: checkpoint.TrimHorizon, Lease: kcl.LeaseConfig{TakeInterval: 10 * time.Millisecond},
		Logger: zaptest.NewLogger(f.t, zaptest.Level(zap.ErrorLevel)),
	}
	for _, o := range opts {
		o(&kc)
	}
	return runWorker(f.t, kc)
}

func (f *fake) checkpoint() checkpoint.SequenceNumber {
	l, err := f.store.Get(context.Background(), fakeShard)
	if err != nil {
		return checkpoint.SequenceNumber{}
	}
	return l.CheckpointSequence()
}

func (f *fake) last() checkpoint.SequenceNumber {
	return checkpoint.SequenceNumber{Sequence: f.seqs[len(f.seqs)-1]}
}

// calls records the Handler's calls.
type calls struct {
	mu    sync.Mutex
	all   []lanes.Batch
	count int // records in all
}

func (c *calls) add(b *lanes.Batch) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, *b)
	c.count += len(b.Records)
	return len(c.all)
}

func (c *calls) get() []lanes.Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]lanes.Batch(nil), c.all...)
}

// A partial result: the records before the failed one are not handed over
// again; the retry starts at the failed record.
func TestPartialResultResumesAtFailedRecord(t *testing.T) {
	f := newFake(t, 20, 1)
	var c calls
	f.run(lanes.Config{
		RetryBackoffBase: time.Millisecond, RetryBackoffMax: time.Millisecond,
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			if c.add(b) == 1 {
				return lanes.FailedFrom(7, errors.New("record 7 failed"))
			}
			return nil
		}),
	})
	wait.For(t, 10*time.Second, "the checkpoint at the last record", func() bool { return f.checkpoint() == f.last() })
	got := c.get()
	if len(got) != 2 {
		t.Fatalf("%d calls, want 2", len(got))
	}
	if len(got[0].Records) != 20 || got[0].Attempt != 1 {
		t.Errorf("first call: %d records, attempt %d; want the 20 delivered, attempt 1", len(got[0].Records), got[0].Attempt)
	}
	if r := got[1].Records; len(r) != 13 || r[0].SequenceNumber != f.seqs[7] || got[1].Attempt != 2 {
		t.Errorf("retry: %d records from %s, attempt %d; want the 13 from record 7 (%s), attempt 2", len(r), r[0].SequenceNumber, got[1].Attempt, f.seqs[7])
	}
}

// BatchSize, BatchBytes and BatchWindow shape the batches, across
// deliveries.
func TestBatching(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  lanes.Config
		want []int // records per call
	}{
		{"as delivered", lanes.Config{}, []int{10}},
		{"size", lanes.Config{BatchSize: 4, BatchWindow: time.Second}, []int{4, 4, 2}},
		{"bytes", lanes.Config{BatchBytes: 21, BatchWindow: time.Second}, []int{3, 3, 3, 1}}, // "key-0#i": 7 bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, 10, 1)
			var c calls
			cfg := tc.cfg
			cfg.Handler = lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error { c.add(b); return nil })
			f.run(cfg)
			wait.For(t, 10*time.Second, "every record", func() bool { return f.checkpoint() == f.last() })
			var sizes []int
			for _, b := range c.get() {
				sizes = append(sizes, len(b.Records))
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.want) {
				t.Errorf("batches of %v records, want %v", sizes, tc.want)
			}
		})
	}
}

// A graceful shutdown finishes the records up to the last one a lane
// started and checkpoints there; ProcessRecords had returned long before.
// The next worker handles the rest: every record once.
func TestShutdownFinishesStartedRecords(t *testing.T) {
	f := newFake(t, 100, 10)
	var c calls
	first := make(chan struct{})
	var once sync.Once
	handler := lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
		once.Do(func() { close(first) })
		time.Sleep(5 * time.Millisecond) // a handler's work
		c.add(b)
		return nil
	})
	stop := f.run(lanes.Config{Parallelism: 4, BatchSize: 5, Handler: handler})
	<-first
	stop()
	n := c.count
	if n == 0 || n == 100 {
		t.Fatalf("%d records handled by the end of the shutdown: want those started, not none nor all", n)
	}
	handled := map[string]int{}
	for _, b := range c.get() {
		for _, r := range b.Records {
			handled[r.SequenceNumber]++
		}
	}
	for _, seq := range f.seqs[:n] {
		if handled[seq] != 1 {
			t.Errorf("record %s of the first %d handled %d times, want once", seq, n, handled[seq])
		}
	}
	if cp := f.checkpoint(); cp != (checkpoint.SequenceNumber{Sequence: f.seqs[n-1]}) {
		t.Errorf("checkpoint %s after the shutdown, want the last record handled %s", cp, f.seqs[n-1])
	}
	f.run(lanes.Config{Parallelism: 4, BatchSize: 5, Handler: handler})
	wait.For(t, 10*time.Second, "the checkpoint at the last record", func() bool { return f.checkpoint() == f.last() })
	handled = map[string]int{}
	for _, b := range c.get() {
		for _, r := range b.Records {
			handled[r.SequenceNumber]++
		}
	}
	for _, seq := range f.seqs {
		if handled[seq] != 1 {
			t.Errorf("record %s handled %d times in all, want once", seq, handled[seq])
		}
	}
	t.Logf("%d records handled before the shutdown, %d after", n, 100-n)
}

// ProcessRecords blocks, before it queues a batch, while MaxInFlight
// records are held: with batches of 5 and a bound of 8, two batches are
// queued and the third waits. The lanes' metrics count them.
func TestMaxInFlightBlocks(t *testing.T) {
	f := newFake(t, 50, 50)
	reg := prometheus.NewPedanticRegistry()
	release := make(chan struct{})
	var c calls
	f.run(lanes.Config{
		Parallelism: 4, BatchSize: 1, MaxInFlight: 8, Metrics: reg,
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			c.add(b)
			return nil
		}),
	}, func(c *kcl.Config) { c.Retrieval.MaxRecords = 5 })
	inFlight := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, mf := range mfs {
			if mf.GetName() == "kinesis_kcl_lane_records_in_flight" {
				for _, m := range mf.GetMetric() {
					sum += m.GetGauge().GetValue()
				}
			}
		}
		return sum
	}
	wait.For(t, 10*time.Second, "10 records in flight", func() bool { return inFlight() == 10 })
	if wait.Until(200*time.Millisecond, func() bool { return inFlight() > 10 }) {
		t.Fatalf("%v records in flight, bound 8 and a batch of 5 being queued", inFlight())
	}
	close(release)
	wait.For(t, 10*time.Second, "every record", func() bool { return f.checkpoint() == f.last() })
	if n := testutil.CollectAndCount(reg, "kinesis_kcl_lane_records_handled_total"); n == 0 {
		t.Error("no kinesis_kcl_lane_records_handled_total series")
	}
}

// A panicking Handler fails its call, which is retried.
func TestHandlerPanicIsRetried(t *testing.T) {
	f := newFake(t, 3, 1)
	var c calls
	f.run(lanes.Config{
		RetryBackoffBase: time.Millisecond, RetryBackoffMax: time.Millisecond,
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			if c.add(b) == 1 {
				panic("bad record")
			}
			return nil
		}),
	})
	wait.For(t, 10*time.Second, "the checkpoint at the last record", func() bool { return f.checkpoint() == f.last() })
	if got := c.get(); len(got) != 2 || got[1].Attempt != 2 {
		t.Errorf("%d calls, want the panicking one and its retry", len(got))
	}
}

// With a CheckpointInterval, the watermark is written at most once per
// interval while records flow, and at once on shutdown.
func TestCheckpointInterval(t *testing.T) {
	f := newFake(t, 20, 1)
	var c calls
	gate := make(chan struct{})
	first := checkpoint.SequenceNumber{Sequence: f.seqs[0]}
	stop := f.run(lanes.Config{
		BatchSize: 1, CheckpointInterval: time.Hour,
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			if b.Records[0].SequenceNumber != first.Sequence {
				<-gate // the first record alone is handled until the test has seen its checkpoint
			}
			c.add(b)
			return nil
		}),
	})
	wait.For(t, 10*time.Second, "the checkpoint at the first record", func() bool { return f.checkpoint() == first })
	close(gate)
	wait.For(t, 10*time.Second, "every record handled", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.count == 20
	})
	if wait.Until(300*time.Millisecond, func() bool { return f.checkpoint() != first }) {
		t.Errorf("checkpoint %s within the interval of the first one (%s)", f.checkpoint(), first)
	}
	stop()
	if cp := f.checkpoint(); cp != f.last() {
		t.Errorf("checkpoint %s after the shutdown, want the last record %s", cp, f.last())
	}
}

// When another worker takes the lease, the lanes stop: the Handler's
// context ends, and nothing more is handed to it or checkpointed.
func TestLeaseLostStopsLanes(t *testing.T) {
	f := newFake(t, 20, 4)
	started := make(chan struct{}, 20)
	end := make(chan struct{}) // closed before the worker stops
	var c calls
	f.run(lanes.Config{
		Parallelism: 2, BatchSize: 1,
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			started <- struct{}{}
			select { // handling takes until the lease is lost
			case <-ctx.Done():
			case <-end:
			}
			c.add(b)
			return ctx.Err()
		}),
	}, func(c *kcl.Config) {
		// The loss is noticed within 100 ms; the thief's lease expires after 2 s.
		c.Lease = kcl.LeaseConfig{FailoverTime: 2 * time.Second, RenewInterval: 100 * time.Millisecond, TakeInterval: 10 * time.Millisecond}
	})
	t.Cleanup(func() { close(end) })
	<-started
	<-started // both lanes handling
	ctx := context.Background()
	l, err := f.store.Get(ctx, fakeShard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Take(ctx, l, "thief"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "both Handler calls to see their context end", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.all) == 2
	})
	if wait.Until(300*time.Millisecond, func() bool { return len(started) > 0 }) {
		t.Error("a Handler call after the lease was lost")
	}
	if cp := f.checkpoint(); cp.Sequence != string(checkpoint.TrimHorizon) {
		t.Errorf("checkpoint %s, want none written", cp)
	}
}
