package kpl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kinesistest"
)

func TestShardLookup(t *testing.T) {
	f := newStream(t, 4)
	p := newProducer(t, f, Config{})
	out, err := f.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
	if err != nil {
		t.Fatal(err)
	}
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
		if want := shardFor(t, f, "", k.String()); !s.rng.Contains(k) || s.id != want {
			t.Fatalf("key %v: predicted %s %v, the stream routes to %s", k, s.id, s.rng, want)
		}
	}
}

func TestPreserveOrderAcrossReshard(t *testing.T) {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(3, 3))
	var failures []string // the entries failed, for the log
	f := newStreamOf(t, kinesistest.Config{EntryFault: func(e kinesistest.PutEntry) string {
		mu.Lock()
		defer mu.Unlock()
		if r.IntN(100) < 10 {
			failures = append(failures, fmt.Sprintf("call %d entry %d -> %s FAILED: %s", e.Call, e.Index, e.ShardID, describe(e.Data)))
			return "InternalFailure"
		}
		return ""
	}})
	p := newProducer(t, f, Config{PreserveOrder: true, AggregationMaxSize: 400, RecordMaxBufferedTime: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 3 * time.Millisecond, minRefreshInterval: time.Millisecond})
	const n = 4000
	keyOf := func(i int) string { return fmt.Sprintf("k%d", i%30) }
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "first", Data: []byte("rec-")}); err != nil {
		t.Fatal(err) // the first shard map is loaded
	}
	res := newResults(n)
	for i := 0; i < n; i++ {
		var split []string
		switch i {
		case n / 4:
			split = []string{"shardId-000000000000"} // into 1 and 2
		case n / 2:
			split = []string{"shardId-000000000001", "shardId-000000000002"} // both children, into 3 to 6
		}
		for _, id := range split {
			if _, _, err := f.Split(id); err != nil {
				t.Fatal(err)
			}
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
				state += fmt.Sprintf("; stream calls %d list %d", f.Calls(kinesistest.OpPutRecords), f.Calls(kinesistest.OpListShards))
				t.Fatalf("shard map version %d after 5 s, want %d: %s", m.version, want, state)
			}
		}
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	got := f.UserRecords()
	if len(got) != n+1 {
		t.Fatalf("%d records stored, want %d", len(got), n+1)
	}
	// The stream's sequence numbers grow across shards: in that order,
	// each key's records must come in the order they were put.
	sort.Slice(got, func(i, j int) bool {
		if got[i].SequenceNumber != got[j].SequenceNumber {
			return got[i].SequenceNumber < got[j].SequenceNumber
		}
		return got[i].SubSequenceNumber < got[j].SubSequenceNumber
	})
	last := map[string]kinesistest.UserRecord{}
	for _, u := range got {
		if prev, ok := last[u.PartitionKey]; ok && string(prev.Data) > string(u.Data) {
			// The trace: failed entries, then the records written.
			mu.Lock()
			trace := slices.Clone(failures)
			mu.Unlock()
			for _, r := range f.AllRecords() {
				trace = append(trace, fmt.Sprintf("%s seq %s: %s", r.ShardID, r.SequenceNumber, describe(r.Data)))
			}
			for _, l := range trace {
				if strings.Contains(l, u.PartitionKey+"=") {
					t.Log(l)
				}
			}
			t.Fatalf("key %s: %+v (%+v) written after %+v (%+v)", u.PartitionKey, u, res.byID[string(u.Data)], prev, res.byID[string(prev.Data)])
		}
		last[u.PartitionKey] = u
	}
	// Two reshards: at least two maps after the first. The second splits
	// two shards one after the other, and a refresh may fall between them.
	if v := p.shards.Load().version; v < 3 {
		t.Fatalf("shard map version %d, want 3 or more: reshards not noticed", v)
	}
}
