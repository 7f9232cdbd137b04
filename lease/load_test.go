package lease

import (
	"context"
	"fmt"
	"github.com/kinesisgo/kinesis/checkpoint"
	"testing"
	"time"
)

// BenchmarkTableLoad measures the lease table calls of W workers holding M
// leases at steady state with the default timings (FailoverTime 10 s,
// renewals every 3.33 s, taker passes every 1.67 s), over one minute of a
// simulated clock, through a counting store. No checkpoints are made: they
// cost one write each, as often as the application checkpoints.
//
// Reported per lease per minute: writes (renewals and any takes) and item
// reads (every item a scan returns, plus gets); and scans per worker per
// minute. The Java KCL 2.x, for comparison, renews each lease every 3.33 s
// (18 writes/lease/min) and scans the table every 20 s per worker (3 item
// reads/lease/min per worker).
func BenchmarkTableLoad(b *testing.B) {
	for _, m := range []int{10, 100, 1000} {
		for _, w := range []int{1, 4, 20} {
			b.Run(fmt.Sprintf("leases=%d/workers=%d", m, w), func(b *testing.B) {
				for range b.N {
					writes, reads, scans := measureTableLoad(b, m, w)
					b.ReportMetric(writes, "writes/lease/min")
					b.ReportMetric(reads, "reads/lease/min")
					b.ReportMetric(scans, "scans/worker/min")
				}
			})
		}
	}
}

func measureTableLoad(b *testing.B, m, w int) (writes, reads, scans float64) {
	ctx := context.Background()
	store := &countingStore{Store: NewMemoryStore()}
	for i := range m {
		if _, err := store.Create(ctx, Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
			b.Fatal(err)
		}
	}
	clk := newFakeClock()
	cs := make([]*Coordinator, w)
	for i := range cs {
		c, err := NewCoordinator(Config{Store: store, WorkerID: fmt.Sprintf("worker-%02d", i)})
		if err != nil {
			b.Fatal(err)
		}
		c.now = clk.Now
		cs[i] = c
	}
	// Tick every 1/6 s: taker passes every 10 ticks, renewals every 20,
	// the workers staggered.
	const tick = time.Second / 6
	nextTake := make([]int, w)
	t := 0
	run := func(ticks int) {
		for end := t + ticks; t < end; t++ {
			for i, c := range cs {
				if t%20 == (i*7)%20 {
					c.renewPass(ctx)
				}
				if t >= nextTake[i] {
					next := c.takePass(ctx)
					nextTake[i] = t + max(1, int(next.Sub(clk.Now())/tick))
				}
			}
			clk.Advance(tick)
		}
	}
	run(60 * 6) // a minute to settle
	store.mu.Lock()
	w0, l0, lists0, g0 := store.writes, store.listed, store.lists, store.gets
	store.mu.Unlock()
	run(60 * 6)
	store.mu.Lock()
	defer store.mu.Unlock()
	return float64(store.writes-w0) / float64(m),
		float64(store.listed-l0+store.gets-g0) / float64(m),
		float64(store.lists-lists0) / float64(w)
}
