package kpl

import "time"

// bucket is a token bucket holding at most one second of its rate. A take
// larger than the capacity succeeds from a full bucket and leaves a debt.
type bucket struct {
	rate, level float64
	last        int64 // nanotime of the last refill
	started     bool
}

func (b *bucket) refill(now int64) {
	if !b.started {
		b.level, b.last, b.started = b.rate, now, true
		return
	}
	if dt := now - b.last; dt > 0 {
		b.level = min(b.rate, b.level+float64(dt)*b.rate/1e9)
		b.last = now
	}
}

// ready reports whether n tokens may be taken now, and if not, the nanotime
// at which they may.
func (b *bucket) ready(n float64, now int64) (bool, int64) {
	b.refill(now)
	need := min(n, b.rate)
	if b.level >= need {
		return true, 0
	}
	return false, now + int64((need-b.level)/b.rate*1e9) + 1
}

func (b *bucket) take(n float64) { b.level -= n }

// setRate changes the bucket's rate (and capacity) from now on.
func (b *bucket) setRate(rate float64, now int64) {
	b.refill(now)
	b.rate = rate
	b.level = min(b.level, rate)
}

// drain empties the bucket (keeping any debt).
func (b *bucket) drain(now int64) {
	b.refill(now)
	b.level = min(b.level, 0)
}

// Adaptive rate: the shard's buckets run at RateLimit % of its limits times
// a factor that throttling cuts by rateCut and that grows back by rateStep
// per second without throttling (additive increase, multiplicative
// decrease). A producer alone on a shard settles just under the shard's
// limit; producers sharing one split it.
const (
	rateCut     = 0.8
	rateStep    = 0.05
	rateMinimum = 0.05
)

// adaptRateLocked applies throttling reported by senders to s's buckets.
// Only the dispatcher calls it. s.mu is held.
func (p *Producer) adaptRateLocked(s *shard, now int64) {
	switch {
	case s.drain:
		s.drain = false
		s.rateFactor = max(s.rateFactor*rateCut, rateMinimum)
		s.rateChanged = now
		s.bytes.drain(now)
		s.records.drain(now)
	case s.rateFactor < 1 && now-s.rateChanged >= int64(time.Second):
		s.rateFactor = min(s.rateFactor+rateStep, 1)
		s.rateChanged = now
	default:
		return
	}
	base := float64(p.cfg.RateLimit) / 100 * s.rateFactor
	s.bytes.setRate(base*ShardBytesPerSecond, now)
	s.records.setRate(base*ShardRecordsPerSecond, now)
}
