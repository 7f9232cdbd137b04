package lease

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/checkpoint"
)

// TestExpiry: the leases of a worker that crashed are assigned once the
// leader has seen its heartbeat stand still for FailoverTime, by its own
// clock, not before; here the crashed worker led, and its successor judges
// it from the moment the leader item stopped moving.
//
// Timeline (FailoverTime 10s, RenewInterval and TakeInterval 3s,
// WorkerCheckInterval 3s): a starts at 0s, leads, and takes the 3 leases;
// b starts at 1.5s (polls at 1.5s + 3s·k); a sees b's heartbeat at its
// worker check at 3s and asks a's surplus lease for b, which b takes up by
// 7.5s. a crashes at 8.5s: its last renewal of the leader item is at 8s
// (every FailoverTime/5). b first sees that counter at 10.5s at the
// latest, takes the item over 5s later (at a poll), and judges a's
// heartbeat from its first sight of that counter: dead FailoverTime after
// it, when b's worker check is brought forward to.
func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := NewMemoryStore()
		createLeases(t, store, 3)
		timings := func(cfg *Config) {
			cfg.FailoverTime, cfg.RenewInterval, cfg.TakeInterval, cfg.WorkerCheckInterval = 10*time.Second, 3*time.Second, 3*time.Second, 3*time.Second
		}
		start := time.Now()
		a := newTestCoordinator(t, store, nil, "a", timings)
		crashA := run(t, a)
		time.Sleep(1500 * time.Millisecond)
		acq := newAcquisitions()
		b := newTestCoordinator(t, store, nil, "b", func(cfg *Config) { timings(cfg); cfg.OnAcquired = acq.record })
		stopB := run(t, b)
		defer stopB()
		time.Sleep(7 * time.Second) // 8.5s
		synctest.Wait()
		if na, nb := len(a.Held()), len(b.Held()); na != 2 || nb != 1 {
			t.Fatalf("after the hand-over: a holds %d, b %d; want 2 and 1", na, nb)
		}
		if !a.Leading() || b.Leading() {
			t.Fatalf("a leading %v, b leading %v; want a", a.Leading(), b.Leading())
		}
		crashA()

		// a's last renewals: leases and heartbeat at 6s, the leader item
		// at 6s or 8s. b judges a from its first sight of that item's last
		// counter (7.5s or 10.5s): dead FailoverTime later.
		for len(b.Held()) != 3 && time.Since(start) < 30*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(start)
		t.Logf("b took a's leases at %v", took)
		if n := len(b.Held()); n != 3 || took < 17500*time.Millisecond || took > 20500*time.Millisecond+expiryLag+10*time.Millisecond {
			t.Fatalf("b holds %d leases at %v, want 3 between 17.5s and 20.51s", n, took)
		}
		if !b.Leading() {
			t.Fatalf("b does not lead at %v", time.Since(start))
		}
		if n := testutil.ToFloat64(a.metrics.handedOver); n != 1 {
			t.Fatalf("a handed %v leases over, want 1", n)
		}
		if n := testutil.ToFloat64(a.metrics.stolen); n != 1 {
			t.Fatalf("a asked for %v hand-overs as the leader, want 1", n)
		}
		if got := acq.get(); len(got) != 3 {
			t.Fatalf("b acquired %v, want 3 leases", got)
		}
	})
}

func TestStopTakingAndMaxLeases(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	createLeases(t, store, 10)
	c := newTestCoordinator(t, store, newFakeClock(), "a", func(cfg *Config) { cfg.MaxLeasesForWorker = 4 })
	c.pollPass(ctx)
	if n := len(c.Held()); n != 4 {
		t.Fatalf("holds %d leases, cap 4", n)
	}
	d := newTestCoordinator(t, store, newFakeClock(), "d", nil)
	d.StopTaking()
	d.pollPass(ctx)
	if n := len(d.Held()); n != 0 {
		t.Fatalf("took %d leases after StopTaking", n)
	}
}

// TestCappedWorkerLeftovers: the leader gives a worker no more leases than
// its cap (from its heartbeat): the others take the rest.
func TestCappedWorkerLeftovers(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	createLeases(t, store, 10)
	clk := newFakeClock()
	a := newTestCoordinator(t, store, clk, "a", func(cfg *Config) { cfg.MaxLeasesForWorker = 2 })
	b := newTestCoordinator(t, store, clk, "b", nil)
	for range 5 {
		a.renewPass(ctx)
		b.renewPass(ctx)
		a.pollPass(ctx)
		b.pollPass(ctx)
		clk.Advance(simTake)
	}
	if na, nb := len(a.Held()), len(b.Held()); na != 2 || nb != 8 {
		t.Fatalf("a %d, b %d; want 2 and 8", na, nb)
	}
}

// TestReleasePickedUpAtNextPass: a lease released is assigned again (by
// count: here to the worker that released it) by the leader within two
// poll passes (the releasing worker's, which asks for an
// assignment pass, and the leader's), and one handed over on shutdown is
// taken up by its next owner at its next poll. a (TakeInterval 2s,
// RenewInterval and WorkerCheckInterval 3.33s) leads and takes both
// leases; b starts at 1s and gets one by a hand-over (a sees b at 3.33s
// and asks; a hands it over at its renewal, at 3.33s or 6.67s; b takes it
// up at its next poll, at 7s at the latest). b releases it at 7.5s: it is
// held again by 11.5s. a shuts down then and hands both to b, which takes
// them up by 13.5s.
func TestReleasePickedUpAtNextPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := NewMemoryStore()
		createLeases(t, store, 2)
		start := time.Now()
		a := newTestCoordinator(t, store, nil, "a", nil)
		stopA := run(t, a)
		defer stopA()
		time.Sleep(time.Second)
		b := newTestCoordinator(t, store, nil, "b", nil)
		stopB := run(t, b)
		defer stopB()
		time.Sleep(7500*time.Millisecond - time.Since(start))
		synctest.Wait()
		if len(a.Held()) != 1 || len(b.Held()) != 1 {
			t.Fatalf("a %d, b %d", len(a.Held()), len(b.Held()))
		}
		key := b.Held()[0].Key
		if err := b.Release(ctx, key); err != nil {
			t.Fatal(err)
		}
		time.Sleep(11500*time.Millisecond - time.Since(start))
		synctest.Wait()
		if na, nb := len(a.Held()), len(b.Held()); na+nb != 2 {
			t.Fatalf("a holds %d and b %d at 11.5s, want the released lease taken again", na, nb)
		}
		if err := a.ReleaseAll(ctx); err != nil {
			t.Fatal(err)
		}
		if len(a.Held()) != 0 || a.Leading() {
			t.Fatalf("a holds %d leases after ReleaseAll, leading %v", len(a.Held()), a.Leading())
		}
		for _, l := range mustList(t, store) {
			if l.Owner != "b" {
				t.Fatalf("after a's shutdown %s is owned by %q, want b", l.Key, l.Owner)
			}
		}
		time.Sleep(13500*time.Millisecond - time.Since(start))
		synctest.Wait()
		if len(b.Held()) != 2 || !b.Leading() {
			t.Fatalf("after a's shutdown b holds %d, want 2; b leading %v, want true", len(b.Held()), b.Leading())
		}
	})
}

func mustList(t *testing.T, s Store) []Lease {
	t.Helper()
	ls, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// TestTakePinsLatest: the first take of a LATEST lease created without the
// time LATEST stands for writes it; later takes keep the first time, and a
// pinned lease keeps its own.
func TestTakePinsLatest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := NewMemoryStore()
		created := time.Now().Add(-time.Hour)
		for _, l := range []Lease{
			{Key: "bare", Checkpoint: string(checkpoint.Latest)},
			{Key: "pinned", Checkpoint: string(checkpoint.Latest), LatestTimestamp: created},
			{Key: "horizon", Checkpoint: string(checkpoint.TrimHorizon)},
		} {
			if _, err := store.Create(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		first := time.Now()
		a := newTestCoordinator(t, store, nil, "a", nil)
		stopA := run(t, a)
		synctest.Wait()
		if n := len(a.Held()); n != 3 {
			t.Fatalf("a holds %d leases, want 3", n)
		}
		want := map[string]time.Time{"bare": toMillis(first), "pinned": toMillis(created), "horizon": {}}
		check := func(when string) {
			t.Helper()
			for key, at := range want {
				l, err := store.Get(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if !l.LatestTimestamp.Equal(at) {
					t.Errorf("%s: %s LatestTimestamp %v, want %v", when, key, l.LatestTimestamp, at)
				}
			}
		}
		check("first take")
		if err := a.ReleaseAll(ctx); err != nil {
			t.Fatal(err)
		}
		stopA()
		time.Sleep(time.Minute)
		b := newTestCoordinator(t, store, nil, "b", nil)
		stopB := run(t, b)
		defer stopB()
		synctest.Wait()
		if n := len(b.Held()); n != 3 {
			t.Fatalf("b holds %d leases, want 3", n)
		}
		check("a later take")
	})
}

// TestReleasedLeaseAssignedBackToItsHolder: an operator releases (or
// resets) a lease while its holder runs; the leader assigns it again, to
// the same worker, possibly before the holder notices: the holder then
// sees its own ID with a counter it did not write, as it would for another
// process running with its ID. Nobody renews the lease, so the holder
// takes it up again instead of leaving it to a process that does not
// exist.
func TestReleasedLeaseAssignedBackToItsHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := NewMemoryStore()
		createLeases(t, store, 2)
		a, b, stop := twoCoordinators(t, store, nil)
		defer stop()
		if len(a.Held()) != 1 || len(b.Held()) != 1 {
			t.Fatalf("a %d, b %d; want 1 and 1", len(a.Held()), len(b.Held()))
		}
		follower, leader := b, a
		if b.Leading() {
			follower, leader = a, b
		}
		key := follower.Held()[0].Key
		l, err := store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Release(ctx, l); err != nil { // as `kinesisctl leases release` does
			t.Fatal(err)
		}
		leader.TriggerTake() // as the release asks
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if h, ok := follower.Lease(key); ok && h.Counter > l.Counter {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		h, ok := follower.Lease(key)
		if !ok || h.Counter <= l.Counter {
			t.Fatalf("the released lease is not held again by its worker within 3s (held %v)", ok)
		}
		if _, err := follower.Update(ctx, key, func(l *Lease) error { l.Checkpoint = "42"; return nil }); err != nil {
			t.Fatalf("checkpoint after taking it up again: %v", err)
		}
	})
}

// The leader's own lease, released by an operator and assigned back to the
// leader before it noticed: the old holding is reported lost before the new
// one is acquired, so the processing restarts from the table's checkpoint
// rather than going on (and overwriting it) under the new counter.
func TestReleasedLeaseAssignedBackToTheLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := NewMemoryStore()
		createLeases(t, store, 2)
		type event struct {
			lost    bool
			key     string
			counter int64
		}
		var (
			mu     sync.Mutex
			events []event
		)
		record := func(lost bool) func(Lease) {
			return func(l Lease) {
				mu.Lock()
				events = append(events, event{lost, l.Key, l.Counter})
				mu.Unlock()
			}
		}
		a, b, stop := twoCoordinators(t, store, func(cfg *Config) { cfg.OnAcquired, cfg.OnLost = record(false), record(true) })
		defer stop()
		if !a.Leading() || len(a.Held()) != 1 || len(b.Held()) != 1 {
			t.Fatalf("a leading %v with %d, b %d; want a leading, 1 and 1", a.Leading(), len(a.Held()), len(b.Held()))
		}
		key := a.Held()[0].Key
		l, err := store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Release(ctx, l); err != nil { // as `kinesisctl leases release` does
			t.Fatal(err)
		}
		a.TriggerTake()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		h, ok := a.Lease(key)
		if !ok || h.Counter <= l.Counter+1 {
			t.Fatalf("the released lease is not held again by the leader (held %v, counter %d, released at %d)", ok, h.Counter, l.Counter+1)
		}
		mu.Lock()
		defer mu.Unlock()
		var got []event
		for _, e := range events {
			if e.key == key && (e.lost || e.counter > l.Counter) {
				got = append(got, e)
			}
		}
		want := []event{{true, key, l.Counter}, {false, key, l.Counter + 2}} // released at +1, taken at +2
		if !slices.Equal(got, want) {
			t.Errorf("events for %s after the release: %+v, want the old holding lost, then the new one acquired: %+v", key, got, want)
		}
	})
}

// twoCoordinators runs coordinators "a" (started first, so the leader)
// and "b" on store with short timings, modA applied to a's Config, inside
// a synctest bubble, and returns them once they settled (5 s later) with
// the function that stops both.
func twoCoordinators(t *testing.T, store Store, modA func(*Config)) (a, b *Coordinator, stop func()) {
	t.Helper()
	timings := func(cfg *Config) {
		cfg.FailoverTime, cfg.RenewInterval, cfg.TakeInterval, cfg.WorkerCheckInterval = 3*time.Second, time.Second, 600*time.Millisecond, time.Second
	}
	a = newTestCoordinator(t, store, nil, "a", func(cfg *Config) {
		timings(cfg)
		if modA != nil {
			modA(cfg)
		}
	})
	stopA := run(t, a)
	time.Sleep(100 * time.Millisecond)
	b = newTestCoordinator(t, store, nil, "b", timings)
	stopB := run(t, b)
	time.Sleep(5 * time.Second)
	synctest.Wait()
	return a, b, func() { stopB(); stopA() }
}
