package lease

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
)

// load returns the calls made so far (to the lease table, the coordinator
// state and worker metrics tables and the owner index), the items they
// read and the items they wrote.
func (s *countingStore) load() (calls, reads, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists + s.gets + s.writes + s.fleetCalls, s.listed + s.gets + s.fleetReads, s.writes + s.fleetWrites
}

// BenchmarkFleetTableLoad measures what a fleet of workers at steady state
// costs the lease table, per minute at the default timings: calls, items
// read and items written, for the whole fleet. The workers are
// coordinators on one memory store behind a counting layer, in a synctest
// bubble, so a minute of simulated time passes in what the passes cost.
// The target of the lease protocol is at most 2 × leases + 60 × workers
// items read a minute, and 20 writes per lease plus 20 per worker.
func BenchmarkFleetTableLoad(b *testing.B) {
	for _, size := range []struct{ workers, leases int }{{4, 16}, {20, 1000}, {100, 10000}} {
		b.Run(fmt.Sprintf("workers=%d/leases=%d", size.workers, size.leases), func(b *testing.B) {
			if testing.Short() && size.leases > 1000 {
				b.Skip("the largest fleet takes minutes")
			}
			for range b.N {
				var calls, reads, writes int
				synctest.Test(&testing.T{}, func(*testing.T) {
					calls, reads, writes = fleetMinute(b, size.workers, size.leases)
				})
				b.ReportMetric(float64(calls), "calls/min")
				b.ReportMetric(float64(reads), "item-reads/min")
				b.ReportMetric(float64(writes), "item-writes/min")
				b.ReportMetric(float64(2*size.leases+60*size.workers), "read-target/min")
			}
		})
	}
}

// fleetMinute runs workers coordinators on leases leases, at the default
// timings, until they are balanced, and returns what one minute then
// costs. It must run in a synctest bubble.
func fleetMinute(b *testing.B, workers, leases int) (calls, reads, writes int) {
	mem := NewMemoryStore()
	for i := range leases {
		if _, err := mem.Create(context.Background(), Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
			b.Fatal(err)
		}
	}
	store := &countingStore{Store: mem}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := make([]*Coordinator, workers)
	var wg sync.WaitGroup
	for i := range cs {
		c, err := NewCoordinator(Config{Store: store, WorkerID: fmt.Sprintf("worker-%03d", i)})
		if err != nil {
			b.Fatal(err)
		}
		cs[i] = c
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(ctx) }()
	}
	balanced := func() bool {
		lo, hi := leases, 0
		total := 0
		for _, c := range cs {
			n := len(c.Held())
			lo, hi, total = min(lo, n), max(hi, n), total+n
		}
		return total == leases && hi-lo <= 1
	}
	for start := time.Now(); !balanced(); {
		if time.Since(start) > time.Hour {
			b.Fatalf("not balanced after an hour of simulated time")
		}
		time.Sleep(time.Second)
	}
	time.Sleep(time.Minute) // settle: moves still in flight
	c0, r0, w0 := store.load()
	time.Sleep(time.Minute) // the minute measured
	c1, r1, w1 := store.load()
	cancel()
	wg.Wait()
	return c1 - c0, r1 - r0, w1 - w0
}
