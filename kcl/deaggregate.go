package kcl

import (
	"math/big"
	"slices"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// deaggregator turns Kinesis records into user records: KPL aggregated
// records are taken apart (always; a record that is not a valid container is
// one plain user record), and user records at or below the checkpoint the
// shard resumed from are skipped.
type deaggregator struct {
	shardID string
	// resume is the checkpoint reading started at (AT_SEQUENCE_NUMBER);
	// user records at or below (resumeSeq, resumeSub) are skipped. nil once
	// a record past it was seen, or when reading did not start at a
	// sequence number.
	resumeSeq *big.Int
	resumeSub uint64
	// hashRange is the shard's hash key range; user records outside it
	// are delivered and counted. nil when unknown.
	hashRange *hashkey.Range
	// outside counts user records whose hash key lies outside hashRange.
	outside func(n int)
	// undecoded counts records that start like a compressed container but
	// are delivered as they are (corrupt, or expanding beyond
	// aggregation.MaxExpansionRatio or MaxDecompressedSize).
	undecoded func()
	scratch   []aggregation.UserRecord
	// inside caches, for the container being read, whether a partition
	// key's hash key lies in hashRange, so that a key shared by many user
	// records is hashed once per container. aggregation.Decode gives every
	// user record of a key the same string (one entry of the container's
	// key table), so the cache is looked up by the string's address, which
	// costs nothing like hashing its bytes; a key whose entry was taken by
	// another key is just hashed again.
	inside [256]keyCheck
	gen    uint32 // the container being read; entries of others are stale
	// ins is the range check of each user record of the container being
	// read, and group the keys waiting to be hashed for it.
	ins   []bool
	group keyGroup
}

// keyCheck is a cached range check of one partition key string.
type keyCheck struct {
	p     *byte
	n     int
	gen   uint32
	in    bool
	known bool // in is set (not a key waiting in prehash's group)
}

// appendRecords appends the user records of recs to dst.
func (d *deaggregator) appendRecords(dst []Record, recs []types.Record) []Record {
	dst, _ = d.appendRecordsUpTo(dst, recs, 0)
	return dst
}

// appendRecordsUpTo appends the user records of recs to dst until the data
// decompressed from compressed containers reaches limit (0: no limit),
// and returns the records of recs not read yet. The data of plain and
// uncompressed aggregated records is in recs already; decompressed data is
// new memory, which limit bounds per batch.
func (d *deaggregator) appendRecordsUpTo(dst []Record, recs []types.Record, limit int) ([]Record, []types.Record) {
	decompressed := 0
	// Runs of containers are decoded together, up to eight at a time:
	// queued holds the user record counts (-1: not a valid container) of
	// the records after recs[i] decoded with it, and pending their user
	// records.
	var datas [8][]byte
	var counts [8]int
	var queued []int
	var pending []aggregation.UserRecord
	for i := range recs {
		if limit > 0 && decompressed >= limit {
			clear(d.scratch[:cap(d.scratch)])
			return dst, recs[i:]
		}
		r := &recs[i]
		seq := aws.ToString(r.SequenceNumber)
		arrival := aws.ToTime(r.ApproximateArrivalTimestamp)
		// At the checkpointed record, sub-sequence numbers up to and
		// including skipThrough are skipped.
		atResume, skipThrough := false, uint64(0)
		if d.resumeSeq != nil {
			if n, ok := new(big.Int).SetString(seq, 10); ok {
				c := n.Cmp(d.resumeSeq)
				if c < 0 {
					continue // before the checkpoint: already processed
				}
				if c == 0 {
					atResume, skipThrough = true, d.resumeSub
				}
			}
			d.resumeSeq = nil
		}
		var users []aggregation.UserRecord
		var ok bool
		switch {
		case len(queued) > 0:
			if n := queued[0]; n >= 0 {
				users, pending, ok = pending[:n:n], pending[n:], true
			}
			queued = queued[1:]
		case d.resumeSeq == nil && i+1 < len(recs) && batchable(r.Data) && batchable(recs[i+1].Data):
			// Containers in a row: their digests are checked together.
			k := 0
			for k < len(datas) && i+k < len(recs) && batchable(recs[i+k].Data) {
				datas[k] = recs[i+k].Data
				k++
			}
			d.scratch = aggregation.DecodeAppendMany(d.scratch[:0], datas[:k], counts[:k])
			clear(datas[:k])
			pending, queued = d.scratch, counts[1:k]
			if n := counts[0]; n >= 0 {
				users, pending, ok = pending[:n:n], pending[n:], true
			}
		default:
			if users, ok = aggregation.DecodeAppend(d.scratch[:0], r.Data); ok {
				d.scratch = users
			}
		}
		compressed := aggregation.IsCompressed(r.Data)
		if !ok {
			if compressed && d.undecoded != nil {
				d.undecoded()
			}
			if atResume {
				continue // the checkpointed record itself
			}
			dst = append(dst, Record{
				ShardID:                     d.shardID,
				SequenceNumber:              seq,
				PartitionKey:                aws.ToString(r.PartitionKey),
				ApproximateArrivalTimestamp: arrival,
				Data:                        r.Data,
			})
			continue
		}
		d.gen++
		// A shard holding the whole hash key space (the one shard of a
		// stream never resharded) contains every key: nothing to hash.
		check := d.hashRange != nil && *d.hashRange != fullRange
		outside := 0
		if check {
			d.rangeChecks(users)
		}
		// The records are written in place, every field of Record set
		// one by one, into room made once per container.
		dst = slices.Grow(dst, len(users))
		for j := range users {
			u := &users[j]
			if compressed {
				decompressed += len(u.Data)
			}
			sub := u.SubSequenceNumber
			if atResume && sub <= skipThrough {
				continue
			}
			if check && !d.ins[j] {
				outside++
			}
			dst = dst[:len(dst)+1]
			o := &dst[len(dst)-1]
			o.ShardID = d.shardID
			o.SequenceNumber = seq
			o.SubSequenceNumber = sub
			o.Aggregated = true
			o.PartitionKey = u.PartitionKey
			o.ExplicitHashKey = u.ExplicitHashKey
			o.ApproximateArrivalTimestamp = arrival
			o.Data = u.Data
		}
		if outside > 0 && d.outside != nil {
			d.outside(outside)
		}
	}
	clear(d.scratch[:cap(d.scratch)]) // drop references to the data of this batch
	return dst, nil
}

// batchable reports whether data is an uncompressed container, decoded with
// the containers next to it (compressed ones are decoded one by one, each
// counted against the batch's limit before the next is decompressed).
func batchable(data []byte) bool {
	return aggregation.IsContainer(data) && !aggregation.IsCompressed(data)
}

// fullRange is the whole hash key space.
var fullRange = hashkey.Range{End: hashkey.Max}

// rangeChecks sets d.ins[j] to whether user record j of users lies in
// hashRange. Partition keys not in the cache are hashed eight at a time
// (hashkey.FromPartitionKeys), each distinct key once per container.
func (d *deaggregator) rangeChecks(users []aggregation.UserRecord) {
	if cap(d.ins) < len(users) {
		d.ins = make([]bool, len(users))
	}
	d.ins = d.ins[:len(users)]
	g := &d.group
	g.n = 0
	for j := range users {
		u := &users[j]
		if u.ExplicitHashKey != "" {
			k, err := hashkey.Parse(u.ExplicitHashKey)
			d.ins[j] = err == nil && d.hashRange.Contains(k)
			continue
		}
		c := d.slot(u.PartitionKey)
		if c.gen == d.gen && c.p == unsafe.StringData(u.PartitionKey) && c.n == len(u.PartitionKey) {
			if !c.known { // waiting in the group: hash the group now
				d.flush()
			}
			d.ins[j] = c.in
			continue
		}
		*c = keyCheck{p: unsafe.StringData(u.PartitionKey), n: len(u.PartitionKey), gen: d.gen}
		g.pks[g.n], g.slots[g.n], g.at[g.n] = u.PartitionKey, c, j
		if g.n++; g.n == len(g.pks) {
			d.flush()
		}
	}
	d.flush()
}

// keyGroup is up to eight partition keys waiting to be hashed together.
type keyGroup struct {
	pks   [8]string
	slots [8]*keyCheck // their cache entries
	at    [8]int       // the index of their user records
	keys  [8]hashkey.Key
	n     int
}

// flush hashes the keys of the group and sets their range checks, in
// d.ins and in their cache entries (unless another key took an entry
// since).
func (d *deaggregator) flush() {
	g := &d.group
	if g.n == 0 {
		return
	}
	hashkey.FromPartitionKeys(g.pks[:g.n], g.keys[:g.n])
	for i, pk := range g.pks[:g.n] {
		in := d.hashRange.Contains(g.keys[i])
		d.ins[g.at[i]] = in
		if c := g.slots[i]; c.p == unsafe.StringData(pk) && c.n == len(pk) && c.gen == d.gen {
			c.in, c.known = in, true
		}
	}
	clear(g.pks[:g.n])
	clear(g.slots[:g.n])
	g.n = 0
}

// slot returns the cache entry of a partition key string.
func (d *deaggregator) slot(pk string) *keyCheck {
	return &d.inside[(uintptr(unsafe.Pointer(unsafe.StringData(pk)))>>4)%uintptr(len(d.inside))]
}
