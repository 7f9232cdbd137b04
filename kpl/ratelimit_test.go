package kpl

import (
	"math"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	b := bucket{rate: 1000}
	if ok, _ := b.ready(1000, 0); !ok {
		t.Fatal("full bucket refused its capacity")
	}
	b.take(1000)
	ok, at := b.ready(500, 0)
	if ok || at < int64(500*time.Millisecond) || at > int64(501*time.Millisecond) {
		t.Fatalf("empty bucket: ok %v, ready at %v", ok, time.Duration(at))
	}
	if ok, _ := b.ready(500, int64(500*time.Millisecond)); !ok {
		t.Fatal("refilled bucket refused")
	}
	// More than the capacity: allowed from a full bucket, leaving a debt.
	b2 := bucket{rate: 10}
	if ok, _ := b2.ready(50, 0); !ok {
		t.Fatal("oversized take refused from a full bucket")
	}
	b2.take(50)
	if ok, _ := b2.ready(1, int64(time.Second)); ok {
		t.Fatal("debt not kept")
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
