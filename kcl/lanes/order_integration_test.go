package lanes_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl/lanes"
)

// TestIntegrationParallelLanesKeepKeyOrder: 20,000 records of 100 keys on
// one shard, handled by 10 lanes in batches of up to 50: every record is
// handled once, the records of each key in sequence order, lanes run
// concurrently, and the checkpoint ends at the shard's last record. (The
// producer may write a key's records out of the order they were put in:
// the order checked is the shard's.)
func TestIntegrationParallelLanesKeepKeyOrder(t *testing.T) {
	e := newEnv(t, 1)
	total := e.put(100, 200, nil)

	var mu sync.Mutex
	last := map[string]seen{} // by key
	count := map[checkpoint.SequenceNumber]int{}
	var maxPos checkpoint.SequenceNumber
	var running, maxRunning atomic.Int32
	f, err := lanes.New(lanes.Config{
		Parallelism: 10, BatchSize: 50,
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond) // a handler's work, so that lanes overlap
			mu.Lock()
			defer mu.Unlock()
			for _, r := range b.Records {
				s := parse(t, r)
				if prev, ok := last[s.key]; ok && s.pos.Compare(prev.pos) <= 0 {
					t.Errorf("key %s: record %d (%s) after record %d (%s)", s.key, s.n, s.pos, prev.n, prev.pos)
				}
				last[s.key] = s
				count[s.pos]++
				if s.pos.Compare(maxPos) > 0 {
					maxPos = s.pos
				}
			}
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(count)
	}
	stop := e.run(e.config("w", f))
	took := wait.For(t, 60*time.Second, "every record handled", func() bool { return handled() >= total })
	t.Logf("%d records handled in %v; at most %d lanes at once", total, took, maxRunning.Load())
	stop()

	mu.Lock()
	defer mu.Unlock()
	for pos, n := range count {
		if n != 1 {
			t.Errorf("record %s handled %d times", pos, n)
		}
	}
	if len(count) != total {
		t.Errorf("%d records handled, want %d", len(count), total)
	}
	if m := maxRunning.Load(); m < 2 {
		t.Errorf("at most %d lanes ran at once, want several", m)
	}
	if cp := e.checkpointOf("shardId-000000000000"); cp != maxPos {
		t.Errorf("checkpoint after the shutdown %s, want the last record %s", cp, maxPos)
	}
}
