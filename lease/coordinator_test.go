package lease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/backoff"
)

// newTestCoordinator returns a coordinator on store with the simulation's
// timings (changed by mod) that retries failed calls at once. With a nil
// clk it reads the time from time.Now (the fake clock of a synctest
// bubble, in one).
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

// fakeClock is a settable clock for coordinators stepped by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingStore counts calls and ownership changes.
type countingStore struct {
	Store
	mu                    sync.Mutex
	moves                 int // successful takes that changed the owner
	lists, listed, gets   int
	renews, takes, writes int
	// calls to the coordinator state and worker metrics tables and the
	// owner index, the items they read, and their writes
	fleetCalls, fleetReads, fleetWrites int
}

func (s *countingStore) fleetRead(n int) {
	s.mu.Lock()
	s.fleetCalls++
	s.fleetReads += n
	s.mu.Unlock()
}

func (s *countingStore) fleetWrite() {
	s.mu.Lock()
	s.fleetCalls++
	s.fleetWrites++
	s.mu.Unlock()
}

func (s *countingStore) Leader(ctx context.Context) (LeaderState, error) {
	s.fleetRead(1)
	return s.Store.Leader(ctx)
}

func (s *countingStore) Workers(ctx context.Context) ([]WorkerState, error) {
	ws, err := s.Store.Workers(ctx)
	s.fleetRead(len(ws))
	return ws, err
}

func (s *countingStore) Owned(ctx context.Context, owner string) ([]string, error) {
	ks, err := s.Store.Owned(ctx, owner)
	s.fleetRead(len(ks))
	return ks, err
}

func (s *countingStore) AcquireLeader(ctx context.Context, prev LeaderState, owner string) (LeaderState, error) {
	s.fleetWrite()
	return s.Store.AcquireLeader(ctx, prev, owner)
}

func (s *countingStore) RenewLeader(ctx context.Context, l LeaderState, notify []string) (LeaderState, error) {
	s.fleetWrite()
	return s.Store.RenewLeader(ctx, l, notify)
}

func (s *countingStore) ReleaseLeader(ctx context.Context, l LeaderState) error {
	s.fleetWrite()
	return s.Store.ReleaseLeader(ctx, l)
}

func (s *countingStore) Notify(ctx context.Context, workers []string, request bool) error {
	s.fleetWrite()
	return s.Store.Notify(ctx, workers, request)
}

func (s *countingStore) Heartbeat(ctx context.Context, w WorkerState) error {
	s.fleetWrite()
	return s.Store.Heartbeat(ctx, w)
}

func (s *countingStore) RemoveWorker(ctx context.Context, id string) error {
	s.fleetWrite()
	return s.Store.RemoveWorker(ctx, id)
}

func (s *countingStore) List(ctx context.Context) ([]Lease, error) {
	ls, err := s.Store.List(ctx)
	s.mu.Lock()
	s.lists++
	s.listed += len(ls)
	s.mu.Unlock()
	return ls, err
}

func (s *countingStore) Get(ctx context.Context, key string) (Lease, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.Store.Get(ctx, key)
}

func (s *countingStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	s.mu.Lock()
	s.renews++
	s.writes++
	s.mu.Unlock()
	return s.Store.Renew(ctx, l)
}

func (s *countingStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	r, err := s.Store.Take(ctx, l, owner)
	s.mu.Lock()
	s.takes++
	s.writes++
	if err == nil && l.Owner != owner {
		s.moves++
	}
	s.mu.Unlock()
	return r, err
}

func (s *countingStore) HandOver(ctx context.Context, l Lease, next string) (Lease, error) {
	r, err := s.Store.HandOver(ctx, l, next)
	s.mu.Lock()
	s.writes++
	if err == nil {
		s.moves++ // taken up by next later, without another owner change
	}
	s.mu.Unlock()
	return r, err
}

func (s *countingStore) Checkpoint(ctx context.Context, l Lease) (Lease, error) {
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	return s.Store.Checkpoint(ctx, l)
}

func (s *countingStore) Release(ctx context.Context, l Lease) (Lease, error) {
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	return s.Store.Release(ctx, l)
}

func (s *countingStore) Moves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moves
}

// acquisitions records the leases a coordinator acquires (OnAcquired), and
// when.
type acquisitions struct {
	mu    sync.Mutex
	start time.Time
	at    map[string]time.Duration // key -> time since start
}

func newAcquisitions() *acquisitions {
	return &acquisitions{start: time.Now(), at: map[string]time.Duration{}}
}

func (a *acquisitions) record(l Lease) {
	a.mu.Lock()
	a.at[l.Key] = time.Since(a.start)
	a.mu.Unlock()
}

func (a *acquisitions) get() map[string]time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.at)
}

// run starts c.Run and returns a function that stops it and waits for it
// to return nil.
func run(t *testing.T, c *Coordinator) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
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
	if d.FailoverTime != 10*time.Second || d.RenewInterval != d.FailoverTime/3 || d.TakeInterval != d.FailoverTime/5 || d.WorkerCheckInterval != d.FailoverTime/3 || d.ScanInterval != 3*d.FailoverTime || d.MaxConcurrentWrites != 16 {
		t.Fatalf("defaults: %+v", d)
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
	a.pollPass(ctx)
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

// TestUpdateSerializedWithRenewals: fenced writes and renewals of one lease
// running concurrently all succeed, each on the counter of the previous.
func TestUpdateSerializedWithRenewals(t *testing.T) {
	ctx := context.Background()
	store := &renewCountingStore{Store: NewMemoryStore()}
	createLeases(t, store, 1)
	c := newTestCoordinator(t, store, nil, "a", nil)
	c.pollPass(ctx)
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

func TestUpdateFnErrorWritesNothing(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	createLeases(t, store, 1)
	c := newTestCoordinator(t, store, nil, "a", nil)
	c.pollPass(ctx)
	before, _ := store.Get(ctx, "shard-000")
	boom := errors.New("boom")
	if _, err := c.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = "5"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("Update: %v, want fn's error", err)
	}
	if after, _ := store.Get(ctx, "shard-000"); after.Counter != before.Counter || after.Checkpoint != string(checkpoint.TrimHorizon) {
		t.Fatalf("written despite fn's error: %+v", after)
	}
}

// TestRunStopsCleanly: Run takes leases at once, delivers events, renews
// every RenewInterval (not before), refuses a second concurrent Run, and
// returns with every goroutine ended when its context ends.
func TestRunStopsCleanly(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		store := NewMemoryStore()
		createLeases(t, store, 3)
		acq := newAcquisitions()
		c := newTestCoordinator(t, store, nil, "a", func(cfg *Config) {
			cfg.FailoverTime, cfg.RenewInterval, cfg.TakeInterval = 300*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
			cfg.OnAcquired = acq.record
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		synctest.Wait()
		if got := acq.get(); len(got) != 3 || got["shard-000"] != 0 {
			t.Fatalf("acquired at once: %v, want all 3 at 0s", got)
		}
		before, _ := store.Get(ctx, "shard-000")
		time.Sleep(100*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if l, _ := store.Get(ctx, "shard-000"); l.Counter != before.Counter {
			t.Fatalf("renewed before RenewInterval: counter %d, was %d", l.Counter, before.Counter)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if l, _ := store.Get(ctx, "shard-000"); l.Counter != before.Counter+1 {
			t.Fatalf("after RenewInterval: counter %d, want one renewal from %d", l.Counter, before.Counter)
		}
		if err := c.Run(ctx); err == nil {
			t.Fatal("second concurrent Run succeeded")
		}
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("Run did not return when its context ended")
		}
	})
}

// flushForTest delivers queued events on the calling goroutine.
func (q *eventQueue) flushForTest() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.run(ctx)
}

// TestTriggerTake: a lease created after a pass is taken at once when a
// pass is triggered, without waiting for the interval: here the worker
// leads, and its own request makes it scan at once.
func TestTriggerTake(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		store := NewMemoryStore()
		acq := newAcquisitions()
		c := newTestCoordinator(t, store, nil, "a", func(cfg *Config) {
			cfg.FailoverTime, cfg.TakeInterval = time.Hour, time.Hour
			cfg.OnAcquired = acq.record
		})
		stop := run(t, c)
		defer stop()
		synctest.Wait()
		if n := testutil.ToFloat64(c.metrics.takerPasses); n != 1 {
			t.Fatalf("%v taker passes at start, want 1 (the first runs at once)", n)
		}
		time.Sleep(time.Minute)
		createLeases(t, store, 1)
		c.TriggerTake()
		synctest.Wait()
		if got := acq.get(); len(got) != 1 || got["shard-000"] != time.Minute {
			t.Fatalf("acquired %v, want shard-000 at once (1m0s)", got)
		}
	})
}
