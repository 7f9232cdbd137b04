package kcl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/lease"
)

// prefetchSpy is the in-memory stream with a signal when a GetRecords
// call returned a record with the data it waits for.
type prefetchSpy struct {
	*kinesistest.Stream
	data string
	once sync.Once
	read chan struct{}
}

func (p *prefetchSpy) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out, err := p.Stream.GetRecords(ctx, in, opts...)
	if err == nil {
		for _, r := range out.Records {
			if string(r.Data) == p.data {
				p.once.Do(func() { close(p.read) })
			}
		}
	}
	return out, err
}

// eventLog is a processor that logs every call in one list, in order.
type eventLog struct {
	mu     sync.Mutex
	events []string
	// hold, when set, runs in ProcessRecords before the batch is logged.
	hold func(ctx context.Context, b *Batch)
}

func (p *eventLog) log(e string) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

func (p *eventLog) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

func (p *eventLog) Initialize(context.Context, *InitializeInput) error { p.log("init"); return nil }
func (p *eventLog) ProcessRecords(ctx context.Context, b *Batch) error {
	if p.hold != nil {
		p.hold(ctx, b)
	}
	for _, r := range b.Records {
		p.log("record " + string(r.Data))
	}
	return nil // no checkpoint: a failing checkpoint would end the shard by itself
}
func (p *eventLog) LeaseLost(context.Context, *LeaseLostInput)         { p.log("lost") }
func (p *eventLog) ShardEnded(context.Context, *ShardEndedInput) error { p.log("ended"); return nil }
func (p *eventLog) ShutdownRequested(context.Context, *ShutdownRequestedInput) error {
	p.log("shutdown")
	return nil
}

// until returns the events up to the first one that is stop, and whether
// stop came.
func until(events []string, stop string) ([]string, bool) {
	i := slices.Index(events, stop)
	if i < 0 {
		return events, false
	}
	return events[:i+1], true
}

// A batch prefetched while ProcessRecords runs is not handed over once the
// shard is to stop: the loss of the lease and a shutdown take priority over
// a batch that is ready. Each case runs several times, as a select between
// a ready batch and the stop would pick either. (On a lost lease the
// poller, whose context ends with the shard's, mostly withdraws its batch
// first; the shutdown leaves the batch ready.)
func TestShardStopsBeforePrefetchedBatch(t *testing.T) {
	const runs = 50
	const shard = "shardId-000000000000"
	// setup starts a worker on a shard holding "one" and "two", read one
	// record per GetRecords call, with hold running in ProcessRecords of
	// "one". It returns once "two" was read ahead and the worker is idle.
	setup := func(t *testing.T, p *eventLog, hold func(ctx context.Context)) (*Worker, lease.Store, func()) {
		fk := newStream(t, testStream, 1)
		putTo(t, fk, shard, "k", []byte("one"))
		putTo(t, fk, shard, "k", []byte("two"))
		spy := &prefetchSpy{Stream: fk, data: "two", read: make(chan struct{})}
		store := lease.NewMemoryStore()
		inFlight := make(chan struct{})
		p.hold = func(ctx context.Context, b *Batch) {
			if string(b.Records[0].Data) == "one" {
				close(inFlight)
				hold(ctx)
			}
		}
		cfg := unitConfig(t, fk, store, p)
		cfg.Kinesis = spy
		cfg.Retrieval.MaxRecords = 1
		cfg.Lease.FailoverTime = time.Hour // the thief's lease does not come back
		w, stop := startWorker(t, cfg)
		<-inFlight
		<-spy.read
		synctest.Wait() // the poller waits to hand "two" over
		return w, store, stop
	}

	t.Run("lease lost", func(t *testing.T) {
		for i := range runs {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					p := &eventLog{}
					// ProcessRecords of "one" returns when the lease is lost.
					_, store, stop := setup(t, p, func(ctx context.Context) { <-ctx.Done() })
					l, err := store.Get(context.Background(), shard)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := store.Take(context.Background(), l, "thief"); err != nil {
						t.Fatal(err)
					}
					// The renewal finds the lease taken.
					for !slices.Contains(p.snapshot(), "lost") {
						time.Sleep(100 * time.Millisecond)
					}
					stop()
					got, _ := until(p.snapshot(), "lost")
					if want := []string{"init", "record one", "lost"}; !slices.Equal(got, want) {
						t.Errorf("events %q, want %q: no batch after the lease was lost", got, want)
					}
				})
			})
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		for i := range runs {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					p := &eventLog{}
					release := make(chan struct{})
					w, _, _ := setup(t, p, func(context.Context) { <-release })
					shut := make(chan error, 1)
					go func() { shut <- w.Shutdown(context.Background()) }()
					synctest.Wait() // the shutdown is requested and waits for the shard
					close(release)
					if err := <-shut; err != nil {
						t.Fatalf("Shutdown: %v", err)
					}
					got := p.snapshot()
					if want := []string{"init", "record one", "shutdown"}; !slices.Equal(got, want) {
						t.Errorf("events %q, want %q: no batch after the shutdown began", got, want)
					}
					if slices.ContainsFunc(got, func(e string) bool { return strings.Contains(e, "two") }) {
						t.Errorf("the prefetched batch was processed after the shutdown began")
					}
				})
			})
		}
	})
}

// A closed parent that aged out of the retention period before it was
// read to its end is ended as at SHARD_END: Kinesis answers
// ResourceNotFoundException for it while the stream still lists its
// children, which start.
func TestWorkerEndsExpiredParent(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const parent = "shardId-000000000000"
	putTo(t, fk, parent, "k", []byte("gone"))
	store := lease.NewMemoryStore()
	// The application processed the parent before, up to its start.
	if _, err := store.Create(context.Background(), lease.Lease{Key: parent, Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
		t.Fatal(err)
	}
	a, b := split(t, fk, parent)
	putTo(t, fk, a, "ka", []byte("child a"))
	putTo(t, fk, b, "kb", []byte("child b"))
	if err := fk.Expire(parent); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	cfg := unitConfig(t, fk, store, r)
	cfg.ShardSyncInterval = time.Hour // the finished parent's lease is kept
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	startWorker(t, cfg)
	// The children may start as soon as SHARD_END is written, which comes
	// just before the parent's end is counted.
	m := newMetrics(reg)
	wait.For(t, 10*time.Second, "the children's records and the parent counted as expired", func() bool {
		return r.count() >= 2 && testutil.ToFloat64(m.shardsExpired) >= 1
	})
	got, events := r.snapshot()
	var data []string
	for _, rec := range got {
		data = append(data, string(rec.Data))
	}
	slices.Sort(data)
	if want := []string{"child a", "child b"}; !slices.Equal(data, want) {
		t.Errorf("records %q, want %q", data, want)
	}
	if !slices.Contains(events, "ended "+parent) {
		t.Errorf("events %v: ShardEnded not called for the expired parent", events)
	}
	l, err := store.Get(context.Background(), parent)
	if err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint != string(checkpoint.ShardEnd) {
		t.Errorf("parent checkpoint %s, want SHARD_END", l.Checkpoint)
	}
	if !slices.Equal(slices.Sorted(slices.Values(l.ChildShardIDs)), []string{a, b}) {
		t.Errorf("parent names children %v, want %v", l.ChildShardIDs, []string{a, b})
	}
	if n := testutil.ToFloat64(m.shardsExpired); n != 1 {
		t.Errorf("kinesis_kcl_shards_expired_total = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.shardsEnded); n != 0 {
		t.Errorf("kinesis_kcl_shards_ended_total = %v, want 0 (the children are open)", n)
	}
}

// gatedStore is a memory lease table that refuses to create the lease
// key until open is called.
type gatedStore struct {
	*lease.MemoryStore
	key    string
	opened atomic.Bool
}

func (s *gatedStore) open() { s.opened.Store(true) }

func (s *gatedStore) Create(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if l.Key == s.key && !s.opened.Load() {
		return lease.Lease{}, errors.New("create refused by the test")
	}
	return s.MemoryStore.Create(ctx, l)
}

// A merge child leased when its first parent ended does not start while
// its other parent, still in the stream, has no lease (its creation
// failing for a while): once the shard sync leases that parent, it is
// read to its end first.
func TestWorkerMergeChildWaitsForUnleasedParent(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 2)
	const a, b = "shardId-000000000000", "shardId-000000000001"
	putTo(t, fk, a, "k", []byte("a"))
	seqB := putTo(t, fk, b, "k", []byte("b"))
	c := merge(t, fk, a, b)
	seqC := putTo(t, fk, c, "k", []byte("c"))
	ctx := context.Background()
	store := &gatedStore{MemoryStore: lease.NewMemoryStore(), key: b}
	// a was read to its end: SHARD_END, its child named and leased; b has
	// no lease.
	if _, err := store.Create(ctx, lease.Lease{Key: a, Checkpoint: string(checkpoint.ShardEnd), ChildShardIDs: []string{c}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, lease.Lease{Key: c, Checkpoint: string(checkpoint.TrimHorizon), ParentShardIDs: []string{a, b}}); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	w, _ := startWorker(t, unitConfig(t, fk, store, r))
	wait.For(t, 10*time.Second, "the child's lease held", func() bool { return slices.Contains(w.Shards(), c) })
	time.Sleep(300 * time.Millisecond) // several parent polls; nothing may be delivered
	if got, _ := r.snapshot(); len(got) > 0 {
		t.Fatalf("records %v delivered while %s had no lease", got, b)
	}
	store.open()
	wait.For(t, 10*time.Second, "the child's record", func() bool {
		got, _ := r.snapshot()
		return slices.ContainsFunc(got, func(rec Record) bool { return rec.SequenceNumber == seqC })
	})
	got, _ := r.snapshot()
	var seqs []string
	for _, rec := range got {
		seqs = append(seqs, rec.SequenceNumber)
	}
	if i, j := slices.Index(seqs, seqB), slices.Index(seqs, seqC); i < 0 || i > j {
		t.Fatalf("records %v: want %s's record %s before the child's %s", seqs, b, seqB, seqC)
	}
}
