package kpl

import (
	"sync"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// shard is the producer's state for one open shard: the records waiting to
// be sent to it, in batches (one batch becomes one Kinesis record).
type shard struct {
	id  string
	rng hashkey.Range

	mu      sync.Mutex
	open    *batch            // being filled
	sealed  []*batch          // full, waiting to be sent, oldest first
	batches *freeList[*batch] // the producer's batches kept for reuse (nil: none)
	// keepBatch is the size above which a batch's memory is not kept for
	// reuse: a large record sent on its own would otherwise pin it.
	keepBatch int
	removed   bool  // no longer in the shard map; records go elsewhere
	dead      bool  // the producer is closed
	inflight  int   // requests in flight holding batches of this shard
	failures  int   // consecutive failed attempts
	retryAt   int64 // nanotime before which nothing is sent (backoff)
	drain     bool  // throttled: the dispatcher empties the buckets and slows down

	// Used by the dispatcher only (besides bytes and records below).
	rateFactor  float64 // share of RateLimit currently used, (0, 1]
	rateChanged int64   // nanotime of the last change of rateFactor

	// Used by the dispatcher only.
	bytes, records bucket
}

// batch is the user records that will travel as one Kinesis record: an
// aggregated record, or the single record itself. Their data and keys are
// in enc, copied there by Put: the one copy the producer makes of them
// before the request body.
type batch struct {
	shard  *shard
	recs   []pending
	enc    aggregation.Encoder
	oldest int64 // nanotime of the oldest record's Put
	// The first record's hash key (the aggregated record's explicit hash
	// key) and keys (those of a batch sent as its single record).
	key     hashkey.Key
	pk, ehk string
	lastErr error // why the batch's last attempt failed
}

// wireSize is what the batch counts against the request and shard limits:
// data plus partition key.
func (b *batch) wireSize() int {
	if len(b.recs) == 1 {
		return int(b.recs[0].size)
	}
	return b.enc.Size() + len(aggregatedPartitionKey)
}

// singleData returns the data of a batch's first record, in b's memory.
func (b *batch) singleData() []byte {
	for r := range b.enc.Records() {
		return r.Data
	}
	return nil
}

// unpack appends b's records to dst as records of their own, their data
// copied out of b.
func (b *batch) unpack(dst []userRec) []userRec {
	i := 0
	for r := range b.enc.Records() {
		u := userRec{pending: b.recs[i], pk: r.PartitionKey, ehk: r.ExplicitHashKey, data: cloneData(r.Data), lastErr: b.lastErr}
		if i == 0 {
			u.key = b.key
		} else {
			u.key = recordKey(r.PartitionKey, r.ExplicitHashKey)
		}
		dst = append(dst, u)
		i++
	}
	return dst
}

// recordKey returns the hash key of a record that was validated by Put.
func recordKey(pk, ehk string) hashkey.Key {
	if ehk != "" {
		k, _ := hashkey.Parse(ehk)
		return k
	}
	return hashkey.FromPartitionKey(pk)
}

// aggregatedPartitionKey is the partition key of aggregated records; their
// ExplicitHashKey (the first user record's hash key) routes them.
const aggregatedPartitionKey = "a"

func newBatch(s *shard) *batch {
	if s.batches != nil {
		if b, ok := s.batches.get(); ok {
			b.shard = s
			return b
		}
	}
	return &batch{shard: s}
}

// freeBatch gives b's memory back for reuse. Nothing may read b, or data
// from b, afterwards.
func freeBatch(b *batch) {
	free, keep := b.shard.batches, b.shard.keepBatch
	if free == nil || b.enc.Size() > keep || cap(b.recs) > keep/4 {
		return
	}
	clear(b.recs)
	b.recs = b.recs[:0]
	b.enc.Reset()
	b.shard = nil
	b.oldest = 0
	b.pk, b.ehk, b.lastErr = "", "", nil
	free.put(b)
}

// addLocked adds r to s's open batch, copying its data and keys into it and
// sealing batches that are full, and returns how many it sealed and their
// wire bytes, and whether r started a new batch. s.mu is held.
func (p *Producer) addLocked(s *shard, r *userRec) (sealed int, sealedBytes int64, started bool) {
	b := s.open
	if b == nil {
		b = newBatch(s)
		s.open = b
	}
	rec := aggregation.Record{PartitionKey: r.pk, ExplicitHashKey: r.ehk, Data: r.data}
	if len(b.recs) > 0 {
		if p.cfg.DisableAggregation || !b.enc.TryAdd(rec, p.cfg.AggregationMaxSize) {
			s.sealed = append(s.sealed, b)
			sealed, sealedBytes = 1, int64(b.wireSize())
			b = newBatch(s)
			s.open = b
		} else {
			b.recs = append(b.recs, r.pending)
			b.oldest = min(b.oldest, r.put)
			if r.lastErr != nil {
				b.lastErr = r.lastErr
			}
			return 0, 0, false
		}
	}
	// First record of a batch: it always goes in, even when over the cap
	// (it is then sent on its own).
	b.enc.Add(rec)
	b.recs = append(b.recs, r.pending)
	b.oldest = r.put
	b.key, b.pk, b.ehk, b.lastErr = r.key, r.pk, r.ehk, r.lastErr
	if p.cfg.DisableAggregation || b.enc.Size() >= p.cfg.AggregationMaxSize {
		s.sealed = append(s.sealed, b)
		s.open = nil
		sealed++
		sealedBytes += int64(b.wireSize())
	}
	return sealed, sealedBytes, true
}

// takeAllLocked appends all of s's queued records to dst, oldest first, as
// records of their own, and empties s. s.mu is held.
func (s *shard) takeAllLocked(dst []userRec) []userRec {
	for _, b := range s.takeBatchesLocked(nil) {
		dst = b.unpack(dst)
		freeBatch(b)
	}
	return dst
}

// takeBatchesLocked appends all of s's queued batches to dst, oldest first,
// and empties s. s.mu is held.
func (s *shard) takeBatchesLocked(dst []*batch) []*batch {
	dst = append(dst, s.sealed...)
	clear(s.sealed)
	s.sealed = s.sealed[:0]
	if s.open != nil {
		if len(s.open.recs) > 0 {
			dst = append(dst, s.open)
		} else {
			freeBatch(s.open)
		}
		s.open = nil
	}
	return dst
}

// oldestLocked returns the nanotime of s's oldest queued record, or false
// if none is queued. s.mu is held.
func (s *shard) oldestLocked() (int64, bool) {
	var t int64
	found := false
	for _, b := range s.sealed {
		if !found || b.oldest < t {
			t, found = b.oldest, true
		}
	}
	if s.open != nil && len(s.open.recs) > 0 && (!found || s.open.oldest < t) {
		t, found = s.open.oldest, true
	}
	return t, found
}

// requeueLocked puts records that must be sent again back at the front of
// s's queue, in order, aggregating them with the open batch when nothing
// else waits (so that a lone retried record shares a Kinesis record again).
//
// With PreserveOrder the records are instead merged into the queue by the
// time they were put: after a reshard, records of one key can come back
// from several places (failed requests of the old shards, the old shards'
// queues) in any order, and must still be sent oldest first. s.mu is held.
func (p *Producer) requeueLocked(s *shard, recs []userRec) {
	if p.cfg.PreserveOrder {
		queued := s.takeAllLocked(nil)
		merged := mergeByPut(recs, queued)
		for i := range merged {
			p.addLocked(s, &merged[i])
		}
		return
	}
	var rest []*batch
	if len(s.sealed) == 0 && s.open != nil {
		recs = s.open.unpack(recs)
		freeBatch(s.open)
		s.open = nil
	}
	rest = append(rest, s.sealed...)
	s.sealed = s.sealed[:0]
	open := s.open
	s.open = nil
	for i := range recs {
		p.addLocked(s, &recs[i])
	}
	// addLocked left the last rebuilt batch open; keep it ahead of the
	// batches that were already waiting.
	if len(rest) > 0 || open != nil {
		if s.open != nil {
			s.sealed = append(s.sealed, s.open)
		}
		s.sealed = append(s.sealed, rest...)
		s.open = open
	}
}

// mergeByPut merges two record lists by Put time, keeping the order within
// each (and a's records first on equal times).
func mergeByPut(a, b []userRec) []userRec {
	out := make([]userRec, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].put < a[0].put {
			out = append(out, b[0])
			b = b[1:]
		} else {
			out = append(out, a[0])
			a = a[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}
