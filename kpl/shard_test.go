package kpl

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

func TestAggregatesPerShard(t *testing.T) {
	f := newStream(t, 3)
	reg := prometheus.NewRegistry()
	p := newProducer(t, f, Config{Metrics: reg, AggregationMaxSize: 4000})
	const n = 3000
	res := putMany(t, p, n, randomKey)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, n, randomKey)
	for id, r := range res.byID {
		if r.Err != nil || r.ShardID == "" || r.SequenceNumber == "" || r.Attempts != 1 {
			t.Fatalf("%s: %+v", id, r)
		}
	}
	// Aggregated records: partition key "a", an explicit hash key in the
	// shard's range, at most AggregationMaxSize bytes.
	kinesisRecords := 0
	for _, r := range f.AllRecords() {
		kinesisRecords++
		if _, ok := aggregation.Decode(r.Data); !ok {
			continue
		}
		if r.PartitionKey != "a" || len(r.Data) > 4000 {
			t.Errorf("aggregated record with key %q, %d bytes", r.PartitionKey, len(r.Data))
		}
		if shardFor(t, f, "", r.ExplicitHashKey) != r.ShardID {
			t.Errorf("explicit hash key %s not in %s", r.ExplicitHashKey, r.ShardID)
		}
	}
	if kinesisRecords*10 > n {
		t.Fatalf("%d Kinesis records for %d user records: not aggregated", kinesisRecords, n)
	}
	if got := testutil.ToFloat64(p.metrics.userRecords); got != n {
		t.Fatalf("user records metric %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(p.metrics.kinesisRecords); int(got) != kinesisRecords {
		t.Fatalf("kinesis records metric %v, want %d", got, kinesisRecords)
	}
}

func TestDisableAggregation(t *testing.T) {
	f := newStream(t, 2)
	p := newProducer(t, f, Config{DisableAggregation: true})
	res := putMany(t, p, 600, randomKey)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, 600, randomKey)
	if n := len(f.Records("shardId-000000000000")) + len(f.Records("shardId-000000000001")); n != 600 {
		t.Fatalf("%d Kinesis records, want 600", n)
	}
	if calls := f.Calls(kinesistest.OpPutRecords); calls < 2 {
		t.Fatalf("%d PutRecords calls for 600 entries (max 500 each)", calls)
	}
}

func TestRequeueKeepsOrder(t *testing.T) {
	p := &Producer{cfg: Config{AggregationMaxSize: 200}.withDefaults()}
	mk := func(from, to int) []userRec {
		var out []userRec
		for i := from; i < to; i++ {
			out = append(out, testRec("k", []byte(fmt.Sprintf("r%04d", i)), int64(i)))
		}
		return out
	}
	order := func(s *shard) []string {
		var out []string
		for _, b := range s.sealed {
			for _, r := range b.unpack(nil) {
				out = append(out, string(r.data))
			}
		}
		if s.open != nil {
			for _, r := range s.open.unpack(nil) {
				out = append(out, string(r.data))
			}
		}
		return out
	}
	for _, preserve := range []bool{false, true} {
		p.cfg.PreserveOrder = preserve
		for _, queued := range []int{0, 3, 30, 100} {
			for _, failed := range []int{1, 5, 40} {
				s := &shard{}
				for _, r := range mk(1000, 1000+queued) {
					p.addLocked(s, &r)
				}
				p.requeueLocked(s, mk(0, failed))
				got := order(s)
				want := append(mk(0, failed), mk(1000, 1000+queued)...)
				if len(got) != len(want) {
					t.Fatalf("queued %d failed %d: %d records, want %d", queued, failed, len(got), len(want))
				}
				for i := range want {
					if got[i] != string(want[i].data) {
						t.Fatalf("queued %d failed %d: order %v", queued, failed, got)
					}
				}
				// Records added afterwards go last.
				p.addLocked(s, &mk(5000, 5001)[0])
				if got := order(s); got[len(got)-1] != "r5000" {
					t.Fatalf("queued %d failed %d: a new record is not last: %v", queued, failed, got)
				}
			}
		}
	}
}

func TestRequeueMergesByPutTimeWithPreserveOrder(t *testing.T) {
	p := &Producer{cfg: Config{AggregationMaxSize: 200, PreserveOrder: true}.withDefaults()}
	s := &shard{}
	rec := func(i int) userRec { return testRec("k", []byte(fmt.Sprint(i)), int64(i)) }
	// The queue holds records 10-19; records 0-4 and then 5-9 come back
	// (in that order, or the other: both must end up first, in order).
	for i := 10; i < 20; i++ {
		r := rec(i)
		p.addLocked(s, &r)
	}
	p.requeueLocked(s, []userRec{rec(5), rec(6), rec(7), rec(8), rec(9)})
	p.requeueLocked(s, []userRec{rec(0), rec(1), rec(2), rec(3), rec(4)})
	var got []string
	for _, b := range s.sealed {
		for _, r := range b.unpack(nil) {
			got = append(got, string(r.data))
		}
	}
	if s.open != nil {
		for _, r := range s.open.unpack(nil) {
			got = append(got, string(r.data))
		}
	}
	for i, g := range got {
		if g != fmt.Sprint(i) {
			t.Fatalf("order %v", got)
		}
	}
	if len(got) != 20 {
		t.Fatalf("%d records", len(got))
	}
}
