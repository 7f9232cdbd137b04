// Package aggregation reads and writes the KPL aggregated record format: many
// user records packed into one Kinesis record, byte-compatible with AWS's
// Kinesis Producer Library and Kinesis Client Library.
//
// A container is laid out as
//
//	F3 89 9A C2 | protobuf AggregatedRecord | MD5 of the protobuf bytes (16 bytes)
//
// where AggregatedRecord holds a table of partition keys, a table of explicit
// hash keys and the records, each record naming its keys by index into the
// tables:
//
//	message AggregatedRecord { repeated string partition_key_table = 1;
//	                           repeated string explicit_hash_key_table = 2;
//	                           repeated Record records = 3; }
//	message Record { required uint64 partition_key_index = 1;
//	                 optional uint64 explicit_hash_key_index = 2;
//	                 required bytes data = 3; repeated Tag tags = 4; }
//	message Tag { required string key = 1; optional string value = 2; }
//
// Encoder builds containers; Decode takes any Kinesis record apart again and
// treats whatever is not a valid container as one plain record.
// DecodeAppendMany decodes many records at once, checking the containers'
// digests together, which a consumer reading a batch of containers uses to
// spend a fraction of the time on the digests.
//
// This package adds one extension that AWS's libraries do not read: a
// compressed container (see Compress), marked by its own prefix so that it can
// never be mistaken for an uncompressed container.
package aggregation

import (
	"crypto/md5"
	"hash/maphash"
	"iter"
	"math/bits"
	"slices"

	"github.com/kinesisgo/kinesis/internal/b64"
	"github.com/kinesisgo/kinesis/internal/md5lanes"
)

// Magic is the prefix of every aggregated container.
var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

// Magic returns the 4-byte prefix that starts every (uncompressed) container.
func Magic() [4]byte { return magic }

// Overhead is the size of a container's framing: the 4-byte prefix and the
// 16-byte MD5 digest.
const Overhead = len(magic) + md5.Size

// Protobuf field tags (field number << 3 | wire type).
const (
	tagPartitionKeyTable    = 1<<3 | wireBytes // AggregatedRecord.partition_key_table
	tagExplicitHashKeyTable = 2<<3 | wireBytes // AggregatedRecord.explicit_hash_key_table
	tagRecords              = 3<<3 | wireBytes // AggregatedRecord.records
	tagPartitionKeyIndex    = 1<<3 | wireVarint
	tagExplicitHashKeyIndex = 2<<3 | wireVarint
	tagData                 = 3<<3 | wireBytes
)

const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// Record is a user record to be added to a container.
type Record struct {
	// PartitionKey is the user record's partition key, kept in the
	// container's partition key table.
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key as a decimal
	// string, or "" for none.
	ExplicitHashKey string
	// Data is the user record's payload. The Encoder copies it.
	Data []byte
}

// Encoder collects user records and encodes them as one container. The zero
// value is an empty Encoder ready to use. Partition keys and explicit hash
// keys are each stored once in their tables however many records use them.
//
// Add copies each record into the Encoder's own memory, already laid out as
// it will be in the container: encoding the container later only frames it
// and adds its digest, and the caller may reuse a record's data as soon as
// Add returns.
//
// An Encoder is not safe for concurrent use.
type Encoder struct {
	// keys is the partition key table as it goes on the wire (fields of
	// AggregatedRecord); pkOff and pkLen locate each key's bytes in it.
	keys         []byte
	pkOff, pkLen []uint32
	// slots is an open-addressing table of the partition keys: each slot
	// is 0 (empty) or a key's index plus one in its low 32 bits and the
	// key's hash in its high 32 bits.
	slots []uint64
	dirty bool // slots holds the keys of before the last Reset
	seed  maphash.Seed
	// ehkTab is the explicit hash key table as it goes on the wire.
	ehkTab []byte
	ehkIdx map[string]uint64
	// recs is the records as they go on the wire (fields of
	// AggregatedRecord, each a Record message with the data in it).
	recs []byte
	n    int
}

// Len returns the number of user records added since the last Reset.
func (e *Encoder) Len() int { return e.n }

// Size returns the exact size in bytes of the container Encode would return
// now, including the prefix and the MD5 digest.
func (e *Encoder) Size() int { return len(e.keys) + len(e.ehkTab) + len(e.recs) + Overhead }

// SizeWith returns the exact size in bytes the container would have if r were
// added, without adding it. Callers use it to keep a container under a cap.
func (e *Encoder) SizeWith(r Record) int {
	c := e.cost(r)
	return e.Size() + c.grow
}

// Add appends r to the container.
func (e *Encoder) Add(r Record) {
	e.add(r, e.cost(r), 0)
}

// TryAdd appends r if the container stays within maxSize bytes (prefix and
// digest included) and reports whether it did. It is SizeWith and Add in one
// step.
func (e *Encoder) TryAdd(r Record, maxSize int) bool {
	c := e.cost(r)
	if e.Size()+c.grow > maxSize {
		return false
	}
	e.add(r, c, maxSize-Overhead-len(e.keys)-len(e.ehkTab))
	return true
}

// addCost is what adding one record takes.
type addCost struct {
	grow    int    // growth of the protobuf message in bytes
	msg     int    // size of the Record message, without its tag and length
	pk, ehk uint64 // key indices (ehk: index+1, 0 for none)
	slot    int    // where a new partition key goes in slots
	hash    uint32
	newPK   bool
	newEHK  bool
}

// cost works out what adding r would take.
func (e *Encoder) cost(r Record) addCost {
	var c addCost
	c.pk, c.slot, c.hash, c.newPK = e.lookup(r.PartitionKey)
	if c.newPK {
		c.grow += fieldSize(len(r.PartitionKey))
	}
	c.msg = 1 + varintSize(c.pk) + fieldSize(len(r.Data))
	if r.ExplicitHashKey != "" {
		ehk, ok := e.ehkIdx[r.ExplicitHashKey]
		if !ok {
			ehk = uint64(len(e.ehkIdx))
			c.newEHK = true
			c.grow += fieldSize(len(r.ExplicitHashKey))
		}
		c.ehk = ehk + 1
		c.msg += 1 + varintSize(ehk)
	}
	c.grow += fieldSize(c.msg)
	return c
}

// lookup finds pk in the partition key table: its index, or, when it is not
// there, the index it would take and the free slot for it.
func (e *Encoder) lookup(pk string) (idx uint64, slot int, hash uint32, isNew bool) {
	if e.slots == nil {
		e.seed = maphash.MakeSeed()
		e.slots = make([]uint64, 64)
	}
	if e.dirty {
		clear(e.slots)
		e.dirty = false
	}
	h := maphash.String(e.seed, pk)
	hash = uint32(h >> 32)
	mask := len(e.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := e.slots[i]
		if s == 0 {
			return uint64(len(e.pkOff)), i, hash, true
		}
		if uint32(s>>32) != hash {
			continue
		}
		k := uint32(s) - 1
		off, n := e.pkOff[k], e.pkLen[k]
		if string(e.keys[off:off+n]) == pk {
			return uint64(k), i, hash, false
		}
	}
}

// add adds r at cost c; limit, if not 0, is the container's cap.
func (e *Encoder) add(r Record, c addCost, limit int) {
	if c.newPK {
		e.keys = append(e.keys, tagPartitionKeyTable)
		e.keys = appendVarint(e.keys, uint64(len(r.PartitionKey)))
		e.pkOff = append(e.pkOff, uint32(len(e.keys)))
		e.pkLen = append(e.pkLen, uint32(len(r.PartitionKey)))
		e.keys = append(e.keys, r.PartitionKey...)
		e.slots[c.slot] = uint64(c.hash)<<32 | (c.pk + 1)
		if 2*len(e.pkOff) > len(e.slots) {
			e.growSlots()
		}
	}
	if c.newEHK {
		if e.ehkIdx == nil {
			e.ehkIdx = make(map[string]uint64)
		}
		e.ehkIdx[r.ExplicitHashKey] = c.ehk - 1
		e.ehkTab = appendString(e.ehkTab, tagExplicitHashKeyTable, r.ExplicitHashKey)
	}
	if n := len(e.recs) + fieldSize(c.msg); n > cap(e.recs) {
		// Grow by doubling, or, for a container with a cap, to the cap
		// at once (from the second record on): a container that grows to
		// its cap leaves no garbage behind, and none of it is spare.
		c := max(2*cap(e.recs), 512)
		if limit > 0 {
			c = limit
		}
		grown := make([]byte, len(e.recs), max(c, n))
		copy(grown, e.recs)
		e.recs = grown
	}
	b := append(e.recs, tagRecords)
	b = appendVarint(b, uint64(c.msg))
	b = append(b, tagPartitionKeyIndex)
	b = appendVarint(b, c.pk)
	if c.ehk != 0 {
		b = append(b, tagExplicitHashKeyIndex)
		b = appendVarint(b, c.ehk-1)
	}
	b = append(b, tagData)
	b = appendVarint(b, uint64(len(r.Data)))
	e.recs = append(b, r.Data...)
	e.n++
}

// growSlots doubles the partition key table's slots.
func (e *Encoder) growSlots() {
	old := e.slots
	e.slots = make([]uint64, 2*len(old))
	mask := len(e.slots) - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		k := uint32(s) - 1
		off, n := e.pkOff[k], e.pkLen[k]
		h := maphash.Bytes(e.seed, e.keys[off:off+n])
		i := int(h) & mask
		for e.slots[i] != 0 {
			i = (i + 1) & mask
		}
		e.slots[i] = s
	}
}

// Reset empties the Encoder, keeping its allocated memory for reuse.
func (e *Encoder) Reset() {
	e.dirty = len(e.pkOff) > 0
	e.keys, e.pkOff, e.pkLen = e.keys[:0], e.pkOff[:0], e.pkLen[:0]
	e.ehkTab = e.ehkTab[:0]
	clear(e.ehkIdx)
	e.recs = e.recs[:0]
	e.n = 0
}

// Records returns an iterator over the records added since the last Reset,
// in the order they were added. A record's Data shares the Encoder's memory
// and is valid until the Encoder is next changed; its keys are strings of
// their own.
func (e *Encoder) Records() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		var pks, ehks []string
		for p := e.recs; len(p) > 0; {
			// The Encoder wrote these bytes: they parse.
			_, msg, rest, _ := nextField(p)
			p = rest
			data, pk, ehk, _ := decodeRecord(msg)
			r := Record{Data: data}
			if pks == nil {
				pks = make([]string, len(e.pkOff))
			}
			if pks[pk] == "" {
				off, n := e.pkOff[pk], e.pkLen[pk]
				pks[pk] = string(e.keys[off : off+n])
			}
			r.PartitionKey = pks[pk]
			if ehk != 0 {
				if ehks == nil {
					ehks = e.ehkList()
				}
				r.ExplicitHashKey = ehks[ehk-1]
			}
			if !yield(r) {
				return
			}
		}
	}
}

// ehkList returns the explicit hash key table in index order.
func (e *Encoder) ehkList() []string {
	out := make([]string, len(e.ehkIdx))
	for k, i := range e.ehkIdx {
		out[i] = k
	}
	return out
}

// Encode returns the container in a new slice of exactly Size bytes.
func (e *Encoder) Encode() []byte {
	return e.AppendTo(make([]byte, 0, e.Size()))
}

// AppendTo appends the container to dst and returns the extended slice.
func (e *Encoder) AppendTo(dst []byte) []byte {
	dst = slices.Grow(dst, e.Size())
	dst = append(dst, magic[:]...)
	start := len(dst)
	dst = append(dst, e.keys...)
	dst = append(dst, e.ehkTab...)
	dst = append(dst, e.recs...)
	sum := md5lanes.Sum(dst[start:])
	return append(dst, sum[:]...)
}

func appendString(dst []byte, tag byte, s string) []byte {
	dst = append(dst, tag)
	dst = appendVarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// varintSize returns the number of bytes of v as a protobuf varint.
func varintSize(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// fieldSize returns the size of a length-delimited field with a one-byte tag
// and n bytes of content.
func fieldSize(n int) int {
	return 1 + varintSize(uint64(n)) + n
}

// Base64Size returns the size of the container in standard base64, what
// AppendBase64 appends.
func (e *Encoder) Base64Size() int { return b64.EncodedLen(e.Size()) }

// AppendBase64 appends the container to dst in standard base64 (RFC 4648,
// padded), as a JSON request body carries a Kinesis record's data, and
// returns the extended slice. The container is never assembled in memory:
// its parts are encoded straight from where Add put them.
func (e *Encoder) AppendBase64(dst []byte) []byte {
	return e.AppendBase64Sum(dst, e.sum())
}

// AppendBase64Sum is AppendBase64 given the container's digest, computed
// by SumMany.
func (e *Encoder) AppendBase64Sum(dst []byte, sum [md5.Size]byte) []byte {
	dst = slices.Grow(dst, e.Base64Size())
	w := b64Writer{dst: dst}
	w.write(magic[:])
	w.write(e.keys)
	w.write(e.ehkTab)
	w.write(e.recs)
	w.write(sum[:])
	return w.close()
}

// sum returns the container's digest, computed from its parts.
func (e *Encoder) sum() [md5.Size]byte {
	h := md5.New()
	h.Write(e.keys)
	h.Write(e.ehkTab)
	h.Write(e.recs)
	var sum [md5.Size]byte
	h.Sum(sum[:0])
	return sum
}

// sumScratch bounds the bytes SumMany copies at a time: a group holds up to
// eight containers whose messages fit in it together, and a container
// alone in its group is digested from its parts, without a copy.
const sumScratch = 1 << 20

// SumMany sets sums[i] to the digest of es[i]'s container (the MD5 of its
// protobuf message, which Encode appends), for every i; sums must be at
// least as long as es. The digests are computed together, on amd64 eight
// at a time with AVX2, in about a third of the time of computing them one
// by one. Each group is copied into scratch for it (up to 1 MiB, grown as
// needed), which SumMany returns for the next call.
func SumMany(es []*Encoder, sums [][md5.Size]byte, scratch []byte) []byte {
	var msgs [8][]byte
	for len(es) > 0 {
		k, total := 0, 0
		for _, e := range es[:min(len(es), 8)] {
			n := e.Size() - Overhead
			if k > 0 && total+n > sumScratch {
				break
			}
			k, total = k+1, total+n
		}
		if k == 1 {
			sums[0] = es[0].sum()
			es, sums = es[1:], sums[1:]
			continue
		}
		if cap(scratch) < total {
			scratch = make([]byte, 0, total)
		}
		buf := scratch[:0]
		for j, e := range es[:k] {
			start := len(buf)
			buf = append(buf, e.keys...)
			buf = append(buf, e.ehkTab...)
			buf = append(buf, e.recs...)
			msgs[j] = buf[start:]
		}
		md5lanes.SumMany(msgs[:k], sums[:k])
		es, sums = es[k:], sums[k:]
	}
	return scratch
}

// b64Writer base64-encodes a sequence of byte slices as if they were one,
// carrying the bytes that do not fill a 3-byte group over to the next.
type b64Writer struct {
	dst   []byte
	carry [3]byte
	nc    int
}

func (w *b64Writer) write(p []byte) {
	if w.nc > 0 {
		n := copy(w.carry[w.nc:], p)
		w.nc += n
		p = p[n:]
		if w.nc < 3 {
			return
		}
		w.dst = b64.AppendEncode(w.dst, w.carry[:])
		w.nc = 0
	}
	whole := len(p) - len(p)%3
	w.dst = b64.AppendEncode(w.dst, p[:whole])
	w.nc = copy(w.carry[:], p[whole:])
}

func (w *b64Writer) close() []byte {
	return b64.AppendEncode(w.dst, w.carry[:w.nc])
}
