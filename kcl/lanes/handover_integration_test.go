package lanes_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl/lanes"
)

// TestIntegrationHandOverDrainsLanes: a second worker joins while the
// first handles two shards with lanes; the lease handed over is drained
// and checkpointed at its watermark before it moves, so every record is
// handled exactly once, by one worker or the other.
func TestIntegrationHandOverDrainsLanes(t *testing.T) {
	e := newEnv(t, 2)
	total := e.put(100, 40, nil)
	var mu sync.Mutex
	count := map[checkpoint.SequenceNumber]int{}
	byWorker := map[string]int{}
	factory := func(worker string) *lanes.Factory {
		f, err := lanes.New(lanes.Config{
			Parallelism: 2, BatchSize: 10, MaxInFlight: 100, // a hand-over drains at most 100 records
			Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
				time.Sleep(80 * time.Millisecond) // a handler's work: 125 records/s per lane
				mu.Lock()
				defer mu.Unlock()
				for _, r := range b.Records {
					count[parse(t, r).pos]++
					byWorker[worker]++
				}
				return nil
			}),
		})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(count)
	}
	e.run(e.config("first", factory("first")))
	wait.For(t, 60*time.Second, "500 records handled", func() bool { return handled() >= 500 })
	e.run(e.config("second", factory("second")))
	wait.For(t, 90*time.Second, "every record handled", func() bool { return handled() >= total })

	mu.Lock()
	defer mu.Unlock()
	t.Logf("records handled by each worker: %v", byWorker)
	for pos, n := range count {
		if n != 1 {
			t.Errorf("record %s handled %d times, want once", pos, n)
		}
	}
	if byWorker["second"] == 0 {
		t.Errorf("the second worker handled no record: no lease was handed over (%v)", byWorker)
	}
}
