package kpl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/internal/wait"
)

func TestShardLookup(t *testing.T) {
	f := newFake(4)
	p := newProducer(t, f, Config{})
	out, _ := f.ListShards(context.Background(), &kinesis.ListShardsInput{})
	p.install(out.Shards)
	m := p.shards.Load()
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 2000; i++ {
		k := hashkey.Key{Hi: r.Uint64(), Lo: r.Uint64()}
		if i == 0 {
			k = hashkey.Key{}
		} else if i == 1 {
			k = hashkey.Max
		}
		s := m.lookup(k)
		if !s.rng.Contains(k) || s.id != f.route(k) {
			t.Fatalf("key %v: predicted %s %v, fake routes to %s", k, s.id, s.rng, f.route(k))
		}
	}
}

func TestPreserveOrderAcrossReshard(t *testing.T) {
	f := newFake(1)
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(3, 3))
	f.entryFault = func(call, entry int) string {
		mu.Lock()
		defer mu.Unlock()
		if r.IntN(100) < 10 {
			return "InternalFailure"
		}
		return ""
	}
	f.tracing = true
	p := newProducer(t, f, Config{PreserveOrder: true, AggregationMaxSize: 400, RecordMaxBufferedTime: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 3 * time.Millisecond, minRefreshInterval: time.Millisecond})
	const n = 4000
	keyOf := func(i int) string { return fmt.Sprintf("k%d", i%30) }
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "first", Data: []byte("rec-")}); err != nil {
		t.Fatal(err) // the first shard map is loaded
	}
	res := newResults(n)
	for i := 0; i < n; i++ {
		if i == n/4 {
			f.setShards(evenShards(2, 1)) // split
		}
		if i == n/2 {
			f.setShards(evenShards(4, 3)) // split both children
		}
		id := fmt.Sprintf("rec-%06d", i)
		if err := p.Put(context.Background(), Record{PartitionKey: keyOf(i), Data: []byte(id)}, res.callback(id)); err != nil {
			t.Fatal(err)
		}
		if i == n/4+100 || i == n/2+100 {
			// Let the producer notice the reshard while records flow.
			want := uint64(2)
			if i > n/2 {
				want = 3
			}
			if !wait.Until(5*time.Second, func() bool { return p.shards.Load().version >= want }) {
				m := p.shards.Load()
				p.mu.Lock()
				state := fmt.Sprintf("inflight %d, prev %d, cur %d, buffered %d, refreshes %v", p.inflight.Load(), p.inflightPrev, p.inflightCur, p.buffered(), testutil.ToFloat64(p.metrics.shardMapRefreshes))
				p.mu.Unlock()
				for _, s := range m.shards {
					s.mu.Lock()
					state += fmt.Sprintf("; %s inflight %d sealed %d open %v retryAt %v", s.id, s.inflight, len(s.sealed), s.open != nil, time.Duration(s.retryAt-p.nanotime()))
					s.mu.Unlock()
				}
				f.mu.Lock()
				state += fmt.Sprintf("; fake calls %d list %d", f.putCalls, f.listCalls)
				f.mu.Unlock()
				t.Fatalf("shard map version %d after 5 s, want %d: %s", m.version, want, state)
			}
		}
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	got := f.readBack()
	if len(got) != n+1 {
		t.Fatalf("%d records stored, want %d", len(got), n+1)
	}
	// The fake's sequence numbers grow across shards: in that order, each
	// key's records must come in the order they were put.
	sort.Slice(got, func(i, j int) bool {
		if got[i].Seq != got[j].Seq {
			return got[i].Seq < got[j].Seq
		}
		return got[i].Sub < got[j].Sub
	})
	last := map[string]userRecord{}
	for _, u := range got {
		if prev, ok := last[u.PartitionKey]; ok && prev.Data > u.Data {
			for _, l := range f.trace {
				if strings.Contains(l, u.PartitionKey+"=") {
					t.Log(l)
				}
			}
			t.Fatalf("key %s: %+v (%+v) written after %+v (%+v)", u.PartitionKey, u, res.byID[u.Data], prev, res.byID[prev.Data])
		}
		last[u.PartitionKey] = u
	}
	if v := p.shards.Load().version; v != 3 {
		t.Fatalf("shard map version %d, want 3: reshards not noticed", v)
	}
}
