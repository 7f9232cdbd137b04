package kpl

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestRequeueKeepsOrder(t *testing.T) {
	p := &Producer{cfg: Config{AggregationMaxSize: 200}.withDefaults()}
	mk := func(from, to int) []userRec {
		var out []userRec
		for i := from; i < to; i++ {
			out = append(out, userRec{pk: "k", data: []byte(fmt.Sprintf("r%04d", i)), put: int64(i)})
		}
		return out
	}
	order := func(s *shard) []string {
		var out []string
		for _, b := range s.sealed {
			for _, r := range b.recs {
				out = append(out, string(r.data))
			}
		}
		if s.open != nil {
			for _, r := range s.open.recs {
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
	rec := func(i int) userRec { return userRec{pk: "k", data: []byte(fmt.Sprint(i)), put: int64(i)} }
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
		for _, r := range b.recs {
			got = append(got, string(r.data))
		}
	}
	if s.open != nil {
		for _, r := range s.open.recs {
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

func TestAdaptiveRate(t *testing.T) {
	p := &Producer{cfg: Config{RateLimit: 150}.withDefaults()}
	s := &shard{rateFactor: 1}
	s.bytes.rate, s.records.rate = 1.5*ShardBytesPerSecond, 1500
	sec := int64(time.Second)
	p.adaptRateLocked(s, 0)
	if s.rateFactor != 1 || s.records.rate != 1500 {
		t.Fatalf("changed without throttling: %v %v", s.rateFactor, s.records.rate)
	}
	// Throttled twice: cut twice, buckets emptied.
	for i := 0; i < 2; i++ {
		s.drain = true
		p.adaptRateLocked(s, sec)
	}
	if want := 1500 * rateCut * rateCut; math.Abs(s.records.rate-want) > 1e-9 || s.records.level > 0 {
		t.Fatalf("after throttling: rate %v (want %v), level %v", s.records.rate, want, s.records.level)
	}
	// Grows back by one step per second without throttling, up to RateLimit.
	p.adaptRateLocked(s, sec+sec/2)
	if want := 1500 * rateCut * rateCut; math.Abs(s.records.rate-want) > 1e-9 {
		t.Fatalf("grew before a second passed: %v", s.records.rate)
	}
	for i := 2; i < 40; i++ {
		p.adaptRateLocked(s, int64(i)*sec)
	}
	if s.rateFactor != 1 || s.records.rate != 1500 || math.Abs(s.bytes.rate-1.5*ShardBytesPerSecond) > 1e-6 {
		t.Fatalf("not back to RateLimit: factor %v, rates %v %v", s.rateFactor, s.records.rate, s.bytes.rate)
	}
}
