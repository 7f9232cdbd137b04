package kpl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/kinesistest"
)

// Records that cannot be written fail with ErrRecordExpired, wrapping the
// last failure, RecordTTL after they were put.
func TestRecordTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newStreamOf(t, kinesistest.Config{
			EntryFault: func(kinesistest.PutEntry) string { return "ProvisionedThroughputExceededException" },
		})
		p := newProducer(t, f, Config{RecordTTL: 200 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
		start := time.Now()
		res := putMany(t, p, 50, randomKey)
		res.wait(t, 5*time.Second)
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Fatalf("records expired after %v, want RecordTTL (200ms)", d)
		}
		for id, r := range res.byID {
			var ee *EntryError
			if !errors.Is(r.Err, ErrRecordExpired) || !errors.As(r.Err, &ee) || r.Attempts < 1 {
				t.Fatalf("%s: %+v, want ErrRecordExpired wrapping the throttling error", id, r)
			}
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(p.metrics.expired); got != 50 {
			t.Fatalf("expired metric %v", got)
		}
		if p.buffered() != 0 {
			t.Fatalf("%d still buffered", p.buffered())
		}
	})
}

func TestPreserveOrder(t *testing.T) {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(9, 9))
	f := newStreamOf(t, kinesistest.Config{Shards: 2, EntryFault: func(kinesistest.PutEntry) string {
		mu.Lock()
		defer mu.Unlock()
		if r.IntN(100) < 10 {
			return "InternalFailure"
		}
		return ""
	}})
	p := newProducer(t, f, Config{PreserveOrder: true, AggregationMaxSize: 500, RecordMaxBufferedTime: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 3 * time.Millisecond})
	const n = 3000
	keyOf := func(i int) string { return fmt.Sprintf("k%d", i%20) }
	res := putMany(t, p, n, keyOf)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	got := checkExactlyOnce(t, f, n, keyOf)
	last := map[string]string{}
	for _, u := range got { // per shard in sequence order
		if prev, ok := last[u.PartitionKey]; ok && prev > string(u.Data) {
			t.Fatalf("key %s: %s written after %s", u.PartitionKey, u.Data, prev)
		}
		last[u.PartitionKey] = string(u.Data)
	}
	if inflight, entries := f.MaxInFlight(), f.MaxEntriesPerShard(); inflight != 1 || entries != 1 {
		t.Fatalf("max in flight per shard %d, max entries per shard per request %d; want 1 and 1", inflight, entries)
	}
}
