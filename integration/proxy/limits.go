package proxy

import (
	"sync"
	"time"
)

// bucket is a token bucket that refills at rate tokens per second up to
// capacity (one second of credit). Its level may go negative: a take larger
// than the capacity is allowed from a full bucket and leaves a debt.
type bucket struct {
	rate, capacity float64
	level          float64
	last           time.Time
}

func newBucket(perSecond int, now time.Time) *bucket {
	r := float64(perSecond)
	return &bucket{rate: r, capacity: r, level: r, last: now}
}

func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.level += dt * b.rate
		if b.level > b.capacity {
			b.level = b.capacity
		}
		b.last = now
	}
}

// has reports whether n tokens can be taken: the bucket holds n (or is
// full, for n above the capacity).
func (b *bucket) has(n float64) bool {
	return b.level >= min(n, b.capacity)
}

// shardLimits are one shard's buckets.
type shardLimits struct {
	writeRecords, writeBytes *bucket
	readCalls, readBytes     *bucket
}

// limiter holds the buckets of every shard the proxy has seen.
type limiter struct {
	limits Limits
	now    func() time.Time

	// observe, when set, is told of every record write admitted or
	// refused (the counts behind the CloudWatch metrics).
	observe func(key string, size int, admitted bool, now time.Time)

	mu     sync.Mutex
	shards map[string]*shardLimits // by stream key + "/" + shard ID
	calls  map[string]*bucket      // control-plane call rates, by callKey
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	return &limiter{limits: l.withDefaults(), now: now, shards: make(map[string]*shardLimits), calls: make(map[string]*bucket)}
}

// shard returns the buckets of a shard, creating full ones on first use.
// l.mu must be held.
func (l *limiter) shard(key string, now time.Time) *shardLimits {
	s, ok := l.shards[key]
	if !ok {
		s = &shardLimits{
			writeRecords: newBucket(l.limits.WriteRecordsPerSecond, now),
			writeBytes:   newBucket(l.limits.WriteBytesPerSecond, now),
			readCalls:    newBucket(l.limits.ReadCallsPerSecond, now),
			readBytes:    newBucket(l.limits.ReadBytesPerSecond, now),
		}
		l.shards[key] = s
	}
	return s
}

// write admits one record of size bytes to a shard, taking its tokens, or
// reports false and takes nothing.
func (l *limiter) write(key string, size int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.shard(key, now)
	s.writeRecords.refill(now)
	s.writeBytes.refill(now)
	admitted := s.writeRecords.has(1) && s.writeBytes.has(float64(size))
	if l.observe != nil {
		l.observe(key, size, admitted, now)
	}
	if !admitted {
		return false
	}
	s.writeRecords.level--
	s.writeBytes.level -= float64(size)
	return true
}

// readCall admits one GetRecords call on a shard, or reports false. A call
// needs a call token and a byte credit above zero.
func (l *limiter) readCall(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.shard(key, now)
	s.readCalls.refill(now)
	s.readBytes.refill(now)
	if !s.readCalls.has(1) || s.readBytes.level <= 0 {
		return false
	}
	s.readCalls.level--
	return true
}

// readBytes charges the bytes a GetRecords call returned to its shard,
// possibly leaving it in debt.
func (l *limiter) readBytes(key string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.shard(key, now)
	s.readBytes.refill(now)
	s.readBytes.level -= float64(n)
}

// call admits one call of a rate-limited operation, perSecond calls per
// second for each key, or reports false.
func (l *limiter) call(key string, perSecond int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.calls[key]
	if !ok {
		b = newBucket(perSecond, now)
		l.calls[key] = b
	}
	b.refill(now)
	if !b.has(1) {
		return false
	}
	b.level--
	return true
}

// callScope says what a control-plane call limit is counted per.
type callScope int

const (
	perAccount callScope = iota // per account and region
	perStream
	perShard
)

// callLimit is AWS's documented rate of a Kinesis operation.
type callLimit struct {
	perSecond int
	scope     callScope
}

// controlPlaneLimits are the operations limited when
// Config.ControlPlaneLimits is set, with AWS's rates.
var controlPlaneLimits = map[string]callLimit{
	"CreateStream":             {5, perAccount},
	"DeleteStream":             {5, perAccount},
	"DescribeStream":           {10, perAccount},
	"DescribeStreamSummary":    {20, perAccount},
	"ListStreams":              {5, perAccount},
	"SplitShard":               {5, perAccount},
	"MergeShards":              {5, perAccount},
	"RegisterStreamConsumer":   {5, perAccount},
	"DeregisterStreamConsumer": {5, perAccount},
	"DescribeStreamConsumer":   {20, perAccount},
	"ListStreamConsumers":      {5, perAccount},
	"ListShards":               {1000, perStream},
	"GetShardIterator":         {5, perShard},
}
