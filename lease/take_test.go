package lease

import (
	"context"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/checkpoint"
)

// TestExpiry: the leases of a worker that stopped renewing are taken once
// their counter has not moved for FailoverTime, as another worker observed
// it, not before; the taker pass is brought forward to that moment.
//
// Timeline (TakeInterval 3s, RenewInterval 3s, FailoverTime 10s): a starts
// at 0s and takes the 3 leases; b starts at 1.5s (passes at 1.5s + 3s·k)
// and steals its share, one lease; a renews at 3s and 6s and crashes at
// 6.5s. b first sees a's last counters at 7.5s, so they expire at 17.5s,
// and b's pass is brought forward from 19.5s to 17.5s + expiryLag.
func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := NewMemoryStore()
		createLeases(t, store, 3)
		timings := func(cfg *Config) {
			cfg.FailoverTime, cfg.RenewInterval, cfg.TakeInterval = 10*time.Second, 3*time.Second, 3*time.Second
		}
		start := time.Now()
		a := newTestCoordinator(t, store, nil, "a", timings)
		crashA := run(t, a)
		time.Sleep(1500 * time.Millisecond)
		acq := newAcquisitions()
		b := newTestCoordinator(t, store, nil, "b", func(cfg *Config) { timings(cfg); cfg.OnAcquired = acq.record })
		stopB := run(t, b)
		defer stopB()
		synctest.Wait()
		time.Sleep(5 * time.Second) // 6.5s: a has renewed at 6s, and noticed the steal at 3s
		synctest.Wait()
		if na, nb := len(a.Held()), len(b.Held()); na != 2 || nb != 1 {
			t.Fatalf("after the steal: a holds %d, b %d; want 2 and 1", na, nb)
		}
		crashA()

		expiry := 7500*time.Millisecond + 10*time.Second + expiryLag
		time.Sleep(expiry - time.Since(start) - time.Nanosecond)
		synctest.Wait()
		if n := len(b.Held()); n != 1 {
			t.Fatalf("b holds %d leases at %v, before a's expired", n, time.Since(start))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := len(b.Held()); n != 3 {
			t.Fatalf("b holds %d leases at %v, want 3 once a's expired", n, time.Since(start))
		}
		// b's clock started 1.5s after a's. b asked for shard-002 at its
		// first pass; a handed it over at its renewal at 3s, and b took it
		// up at its pass at 4.5s.
		want := map[string]time.Duration{"shard-002": 3 * time.Second, "shard-000": expiry - 1500*time.Millisecond, "shard-001": expiry - 1500*time.Millisecond}
		if got := acq.get(); !reflect.DeepEqual(got, want) {
			t.Fatalf("b acquired %v, want %v", got, want)
		}
		if st, tk, held := testutil.ToFloat64(b.metrics.stolen), testutil.ToFloat64(b.metrics.taken), testutil.ToFloat64(b.metrics.held); st != 1 || tk != 3 || held != 3 {
			t.Fatalf("b's metrics: stolen %v taken %v held %v; want 1, 3, 3", st, tk, held)
		}
		if n := testutil.ToFloat64(a.metrics.handedOver); n != 1 {
			t.Fatalf("a handed %v leases over, want 1", n)
		}
	})
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
// and taken by another worker at its next pass. a (passes every 2s from 0s)
// takes both leases; b (passes every 2s from 1s) asks for one at 1s, a
// hands it over at its pass at 2s, and b takes it up at its pass at 3s; a
// releases the other at 3.5s, and b takes it at its pass at 5s.
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
		acq := newAcquisitions()
		b := newTestCoordinator(t, store, nil, "b", func(cfg *Config) { cfg.OnAcquired = acq.record })
		stopB := run(t, b)
		defer stopB()
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if len(a.Held()) != 1 || len(b.Held()) != 1 {
			t.Fatalf("a %d, b %d", len(a.Held()), len(b.Held()))
		}
		if err := a.ReleaseAll(ctx); err != nil {
			t.Fatal(err)
		}
		if len(a.Held()) != 0 {
			t.Fatal("a still holds leases")
		}
		time.Sleep(5*time.Second - time.Since(start))
		synctest.Wait()
		if len(a.Held()) != 0 || len(b.Held()) != 2 {
			t.Fatalf("after release: a %d, b %d", len(a.Held()), len(b.Held()))
		}
		want := map[string]time.Duration{"shard-001": 2 * time.Second, "shard-000": 4 * time.Second} // since b started
		if got := acq.get(); !reflect.DeepEqual(got, want) {
			t.Fatalf("b acquired %v, want %v", got, want)
		}
	})
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
