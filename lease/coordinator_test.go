package lease

import (
	"context"
	"errors"
	"fmt"
	"github.com/kinesisgo/kinesis/checkpoint"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/kinesisgo/kinesis/internal/backoff"
)

func newTestCoordinator(t *testing.T, store Store, clk *fakeClock, id string, mod func(*Config)) *Coordinator {
	t.Helper()
	cfg := Config{Store: store, WorkerID: id, FailoverTime: simFailover, TakeInterval: simTake}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewCoordinator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if clk != nil {
		c.now = clk.Now
	}
	c.retry = backoff.Policy{}
	return c
}

func createLeases(t *testing.T, s Store, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Create(context.Background(), Lease{Key: fmt.Sprintf("shard-%03d", i), Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	s := NewMemoryStore()
	bad := []Config{
		{WorkerID: "w"},
		{Store: s},
		{Store: s, WorkerID: "w", FailoverTime: -time.Second},
		{Store: s, WorkerID: "w", RenewInterval: 10 * time.Second},
		{Store: s, WorkerID: "w", TakeInterval: -1},
		{Store: s, WorkerID: "w", MaxLeasesForWorker: -1},
		{Store: s, WorkerID: "w", MaxConcurrentWrites: -1},
	}
	for _, cfg := range bad {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", cfg)
		}
		if _, err := NewCoordinator(cfg); err == nil {
			t.Errorf("NewCoordinator(%+v) succeeded", cfg)
		}
	}
	d := Config{Store: s, WorkerID: "w"}.withDefaults()
	if d.FailoverTime != 10*time.Second || d.RenewInterval != d.FailoverTime/3 || d.TakeInterval != d.FailoverTime/6 || d.MaxConcurrentWrites != 16 {
		t.Fatalf("defaults: %+v", d)
	}
}

// TestExpiry: leases of a worker that stopped renewing are taken once their
// counter has not moved for FailoverTime, not before, and the taker pass is
// scheduled for that moment.
func TestExpiry(t *testing.T) {
	ctx := context.Background()
	store, clk := NewMemoryStore(), newFakeClock()
	createLeases(t, store, 3)
	a := newTestCoordinator(t, store, clk, "a", nil)
	a.takePass(ctx)
	if len(a.Held()) != 3 {
		t.Fatalf("a holds %d leases, want 3", len(a.Held()))
	}
	b := newTestCoordinator(t, store, clk, "b", nil)
	// b sees a as live with 3 leases and itself: it steals its share.
	b.takePass(ctx)
	a.renewPass(ctx) // a notices the steal
	if got := len(a.Held()) + len(b.Held()); got != 3 || len(b.Held()) != 1 {
		t.Fatalf("after a steal: a %d, b %d", len(a.Held()), len(b.Held()))
	}
	// a crashes now. b's passes keep seeing the same counters.
	start := clk.Now()
	var next time.Time
	for clk.Now().Sub(start) < simFailover {
		next = b.takePass(ctx)
		b.renewPass(ctx)
		if len(b.Held()) != 1 {
			t.Fatalf("b took a's leases %v after the crash, before FailoverTime", clk.Now().Sub(start))
		}
		clk.Advance(time.Second)
	}
	if want := start.Add(simFailover + expiryLag); next.After(want) {
		t.Errorf("next taker pass at %v, want by the expiry at %v", next.Sub(start), want.Sub(start))
	}
	b.takePass(ctx)
	if len(b.Held()) != 3 {
		t.Fatalf("b holds %d leases after a's expired, want 3", len(b.Held()))
	}
	if st, tk, held := testutil.ToFloat64(b.metrics.stolen), testutil.ToFloat64(b.metrics.taken), testutil.ToFloat64(b.metrics.held); st != 1 || tk != 2 || held != 3 {
		t.Fatalf("b's metrics: stolen %v taken %v held %v; want 1, 2, 3", st, tk, held)
	}
}

// flakyStore fails chosen calls.
type flakyStore struct {
	Store
	mu            sync.Mutex
	lostReplies   int   // renewals applied whose reply is then lost (reported as a failed condition)
	renewFailures int   // renewals failing with renewErr without being applied
	renewErr      error // default: a transient error
}

func (s *flakyStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	s.mu.Lock()
	lost, fail := s.lostReplies > 0, s.renewFailures > 0
	if lost {
		s.lostReplies--
	} else if fail {
		s.renewFailures--
	}
	s.mu.Unlock()
	switch {
	case lost:
		if _, err := s.Store.Renew(ctx, l); err != nil {
			return Lease{}, err
		}
		return Lease{}, fmt.Errorf("renew lease %q: %w", l.Key, ErrConflict)
	case fail:
		if s.renewErr != nil {
			return Lease{}, s.renewErr
		}
		return Lease{}, errors.New("renew: connection reset")
	}
	return s.Store.Renew(ctx, l)
}

// TestSpuriousRenewFailure: a renewal that took effect but whose reply was
// lost fails its retry's condition; the re-read shows the worker still owns
// the lease, so it is kept.
func TestSpuriousRenewFailure(t *testing.T) {
	ctx := context.Background()
	mem := NewMemoryStore()
	store := &flakyStore{Store: mem}
	createLeases(t, store, 1)
	var lost atomic.Int32
	c := newTestCoordinator(t, store, newFakeClock(), "a", func(cfg *Config) { cfg.OnLost = func(Lease) { lost.Add(1) } })
	c.takePass(ctx)
	store.lostReplies = 1
	c.renewPass(ctx)
	l, ok := c.Lease("shard-000")
	if !ok {
		t.Fatal("lease dropped after a spurious renewal failure")
	}
	stored, _ := mem.Get(ctx, "shard-000")
	if l.Counter != stored.Counter {
		t.Fatalf("held counter %d, table %d", l.Counter, stored.Counter)
	}
	if _, err := c.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = "12"; return nil }); err != nil {
		t.Fatalf("checkpoint after the spurious failure: %v", err)
	}
	c.events.flushForTest()
	if lost.Load() != 0 {
		t.Fatal("OnLost called for a spurious failure")
	}
}

// TestLostLeaseFencing: once another worker took the lease, renewals and
// fenced writes fail, the lease is reported lost, and nothing is written.
func TestLostLeaseFencing(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	createLeases(t, store, 1)
	var lostKeys []string
	var mu sync.Mutex
	a := newTestCoordinator(t, store, newFakeClock(), "a", func(cfg *Config) {
		cfg.OnLost = func(l Lease) { mu.Lock(); lostKeys = append(lostKeys, l.Key); mu.Unlock() }
	})
	a.takePass(ctx)
	cur, _ := store.Get(ctx, "shard-000")
	if _, err := store.Take(ctx, cur, "b"); err != nil {
		t.Fatal(err)
	}
	_, err := a.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = "99"; return nil })
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Update of a stolen lease: %v, want ErrLeaseLost", err)
	}
	if got, _ := store.Get(ctx, "shard-000"); got.Checkpoint != string(checkpoint.TrimHorizon) || got.Owner != "b" {
		t.Fatalf("stolen lease changed: %+v", got)
	}
	if len(a.Held()) != 0 {
		t.Fatal("lost lease still held")
	}
	if _, err := a.Update(ctx, "shard-000", func(*Lease) error { return nil }); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("second Update: %v", err)
	}
	if err := a.Release(ctx, "shard-000"); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Release of a lost lease: %v", err)
	}
	a.events.flushForTest()
	if len(lostKeys) != 1 || lostKeys[0] != "shard-000" {
		t.Fatalf("OnLost calls: %v", lostKeys)
	}
}

// TestRenewalStopsAfterFailoverTime: a worker that cannot renew for
// FailoverTime drops the lease, since another may have taken it.
func TestRenewalStopsAfterFailoverTime(t *testing.T) {
	ctx := context.Background()
	store := &flakyStore{Store: NewMemoryStore(), renewFailures: 1000}
	createLeases(t, store, 1)
	clk := newFakeClock()
	reg := prometheus.NewRegistry()
	c := newTestCoordinator(t, store, clk, "a", func(cfg *Config) { cfg.Metrics = reg })
	c.takePass(ctx)
	for range 3 {
		clk.Advance(simFailover / 4)
		c.renewPass(ctx)
		if len(c.Held()) != 1 {
			t.Fatal("lease dropped before FailoverTime")
		}
	}
	clk.Advance(simFailover / 4)
	c.renewPass(ctx)
	if len(c.Held()) != 0 {
		t.Fatal("lease kept although not renewed for FailoverTime")
	}
	if n := testutil.ToFloat64(c.metrics.lost); n != 1 {
		t.Fatalf("lost metric %v", n)
	}
	// Three passes of storeAttempts tries, then one try past FailoverTime.
	if n := testutil.ToFloat64(c.metrics.storeErrors.WithLabelValues("renew", "network")); n != 3*storeAttempts+1 {
		t.Fatalf("renew errors metric %v, want %d", n, 3*storeAttempts+1)
	}
}

// TestUpdateSerializedWithRenewals: fenced writes and renewals of one lease
// running concurrently all succeed, each on the counter of the previous.
// renewCountingStore counts successful renewals.
type renewCountingStore struct {
	Store
	renewals atomic.Int64
}

func (s *renewCountingStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	out, err := s.Store.Renew(ctx, l)
	if err == nil {
		s.renewals.Add(1)
	}
	return out, err
}

func TestUpdateSerializedWithRenewals(t *testing.T) {
	ctx := context.Background()
	store := &renewCountingStore{Store: NewMemoryStore()}
	createLeases(t, store, 1)
	c := newTestCoordinator(t, store, nil, "a", nil)
	c.takePass(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 50 {
		wg.Add(2)
		go func() { defer wg.Done(); c.renewPass(ctx) }()
		go func() {
			defer wg.Done()
			_, err := c.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = fmt.Sprint(i); return nil })
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every write took effect once, each conditioned on the previous one's
	// counter (a renewal finding a write in flight leaves it to that write).
	got, _ := store.Get(ctx, "shard-000")
	if want := 1 + 50 + store.renewals.Load(); got.Counter != want || got.Owner != "a" {
		t.Fatalf("counter %d owner %q, want %d and a", got.Counter, got.Owner, want)
	}
}

// hangingStore's Checkpoint does not return until release is closed, as a
// call on a connection that went dead.
type hangingStore struct {
	Store
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (s *hangingStore) Checkpoint(ctx context.Context, l Lease) (Lease, error) {
	s.once.Do(func() { close(s.started) })
	<-s.release
	return Lease{}, errors.New("checkpoint: connection reset")
}

// TestRenewalsNotHeldUpByAWriteInFlight: a checkpoint call that hangs on one
// lease does not stop the renewal of the worker's other leases (they would
// all expire and move to other workers).
func TestRenewalsNotHeldUpByAWriteInFlight(t *testing.T) {
	ctx := context.Background()
	store := &hangingStore{Store: NewMemoryStore(), started: make(chan struct{}), release: make(chan struct{})}
	createLeases(t, store, 2)
	c := newTestCoordinator(t, store, nil, "a", nil)
	c.takePass(ctx)
	if len(c.Held()) != 2 {
		t.Fatalf("holds %d leases, want 2", len(c.Held()))
	}
	updated := make(chan error, 1)
	go func() {
		_, err := c.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = "12"; return nil })
		updated <- err
	}()
	<-store.started
	defer func() {
		close(store.release)
		<-updated
	}()
	before, _ := store.Get(ctx, "shard-001")
	passed := make(chan struct{})
	go func() { c.renewPass(ctx); close(passed) }()
	select {
	case <-passed:
	case <-time.After(5 * time.Second):
		t.Fatal("the renewal pass waits for the hanging checkpoint")
	}
	if after, _ := store.Get(ctx, "shard-001"); after.Counter != before.Counter+1 {
		t.Fatalf("the other lease's counter went from %d to %d, want one renewal", before.Counter, after.Counter)
	}
}

func TestUpdateFnErrorWritesNothing(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	createLeases(t, store, 1)
	c := newTestCoordinator(t, store, nil, "a", nil)
	c.takePass(ctx)
	before, _ := store.Get(ctx, "shard-000")
	boom := errors.New("boom")
	if _, err := c.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = "5"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("Update: %v, want fn's error", err)
	}
	if after, _ := store.Get(ctx, "shard-000"); after.Counter != before.Counter || after.Checkpoint != string(checkpoint.TrimHorizon) {
		t.Fatalf("written despite fn's error: %+v", after)
	}
}

func TestStopTakingAndMaxLeases(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	createLeases(t, store, 10)
	c := newTestCoordinator(t, store, newFakeClock(), "a", func(cfg *Config) { cfg.MaxLeasesForWorker = 4 })
	c.takePass(ctx)
	if n := len(c.Held()); n != 4 {
		t.Fatalf("holds %d leases, cap 4", n)
	}
	d := newTestCoordinator(t, store, newFakeClock(), "d", nil)
	d.StopTaking()
	d.takePass(ctx)
	if n := len(d.Held()); n != 0 {
		t.Fatalf("took %d leases after StopTaking", n)
	}
}

// TestCappedWorkerLeftovers: when the plan names a worker that is at its
// cap, another worker takes the leases left free after a few passes.
func TestCappedWorkerLeftovers(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	createLeases(t, store, 10)
	clk := newFakeClock()
	a := newTestCoordinator(t, store, clk, "a", func(cfg *Config) { cfg.MaxLeasesForWorker = 2 })
	b := newTestCoordinator(t, store, clk, "b", nil)
	for range 5 {
		a.takePass(ctx)
		b.takePass(ctx)
		clk.Advance(simTake)
	}
	if na, nb := len(a.Held()), len(b.Held()); na != 2 || nb != 8 {
		t.Fatalf("a %d, b %d; want 2 and 8", na, nb)
	}
}

// TestReleasePickedUpAtNextPass: a released lease is unowned in the table
// and taken by another worker at its next pass.
func TestReleasePickedUpAtNextPass(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	createLeases(t, store, 2)
	clk := newFakeClock()
	a := newTestCoordinator(t, store, clk, "a", nil)
	b := newTestCoordinator(t, store, clk, "b", nil)
	a.takePass(ctx)
	b.takePass(ctx) // steals one
	a.renewPass(ctx)
	if len(a.Held()) != 1 || len(b.Held()) != 1 {
		t.Fatalf("a %d, b %d", len(a.Held()), len(b.Held()))
	}
	if err := a.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(a.Held()) != 0 {
		t.Fatal("a still holds leases")
	}
	a.takePass(ctx) // taking stopped
	b.takePass(ctx)
	if len(a.Held()) != 0 || len(b.Held()) != 2 {
		t.Fatalf("after release: a %d, b %d", len(a.Held()), len(b.Held()))
	}
}

// TestRunStopsCleanly: Run takes leases, delivers events in order, renews,
// and returns with every goroutine ended.
func TestRunStopsCleanly(t *testing.T) {
	defer goleak.VerifyNone(t)
	store := NewMemoryStore()
	createLeases(t, store, 3)
	acquired := make(chan string, 3)
	c := newTestCoordinator(t, store, nil, "a", func(cfg *Config) {
		cfg.FailoverTime, cfg.TakeInterval = 300*time.Millisecond, 50*time.Millisecond
		cfg.OnAcquired = func(l Lease) { acquired <- l.Key }
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for range 3 {
		select {
		case <-acquired:
		case <-deadline:
			t.Fatal("leases not acquired")
		}
	}
	before, _ := store.Get(context.Background(), "shard-000")
	for {
		l, _ := store.Get(context.Background(), "shard-000")
		if l.Counter > before.Counter {
			break
		}
		select {
		case <-deadline:
			t.Fatal("no renewal")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := c.Run(ctx); err == nil {
		t.Fatal("second concurrent Run succeeded")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// flushForTest delivers queued events on the calling goroutine.
func (q *eventQueue) flushForTest() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.run(ctx)
}

// TestTriggerTake: a lease created after a pass is taken at once when a
// pass is triggered, without waiting for the interval.
func TestTriggerTake(t *testing.T) {
	defer goleak.VerifyNone(t)
	store := NewMemoryStore()
	acquired := make(chan string, 1)
	c := newTestCoordinator(t, store, nil, "a", func(cfg *Config) {
		cfg.FailoverTime, cfg.TakeInterval = time.Hour, time.Hour
		cfg.OnAcquired = func(l Lease) { acquired <- l.Key }
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.After(5 * time.Second)
	for testutil.ToFloat64(c.metrics.takerPasses) < 1 { // the first pass runs at once
		select {
		case <-deadline:
			t.Fatal("no first taker pass")
		case <-time.After(5 * time.Millisecond):
		}
	}
	createLeases(t, store, 1)
	c.TriggerTake()
	select {
	case k := <-acquired:
		if k != "shard-000" {
			t.Fatalf("acquired %q", k)
		}
	case <-deadline:
		t.Fatal("triggered pass did not take the new lease")
	}
}

// TestShardSyncerRun: Run syncs at once and periodically, and returns nil
// when its context ends.
func TestShardSyncerRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	k := lineageStream()
	s, err := NewShardSyncer(ShardSyncConfig{Store: NewMemoryStore(), Kinesis: k, Stream: "s", Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.After(5 * time.Second)
	for {
		k.mu.Lock()
		calls := k.calls
		k.mu.Unlock()
		if calls >= 3 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("%d ListShards calls", calls)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
