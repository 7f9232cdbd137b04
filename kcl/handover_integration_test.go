package kcl_test

import (
	"sync"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/internal/wait"
)

// TestIntegrationBalancingDeliversNoDuplicate: workers joining while
// records flow take their share by hand-over (the holder finishes its
// batch, checkpoints and hands the lease over), so that balancing, unlike a
// crash, delivers no record twice.
func TestIntegrationBalancingDeliversNoDuplicate(t *testing.T) {
	e := newEnv(t, 4)
	e.start(e.config("worker-a"))
	e.waitBalanced(4)
	p := &producer{client: e.kinesis, stream: e.stream, pause: 20 * time.Millisecond}
	var flow sync.WaitGroup
	flow.Add(1)
	go func() { defer flow.Done(); p.put(t, 40, 60) }() // records flow while the others join
	wait.For(t, 30*time.Second, "records flowing", func() bool { return e.collector.distinct() >= 200 })
	e.start(e.config("worker-b"))
	e.waitBalanced(2, 2)
	e.start(e.config("worker-c"))
	e.waitBalanced(1, 1, 2)
	flow.Wait()
	wait.For(t, time.Minute, "every record", func() bool { return e.collector.distinct() >= p.total() })
	got := e.collector.snapshot()
	if dups := checkKeyOrder(t, got, p.count); len(dups) > 0 {
		t.Errorf("%d records delivered twice without a crash, first %+v", len(dups), dups[0])
	}
	workers := map[string]int{}
	for _, d := range got {
		workers[d.worker]++
	}
	if len(workers) != 3 {
		t.Errorf("records by worker %v, want all three", workers)
	}
}
