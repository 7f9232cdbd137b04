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
//
// This package adds one extension that AWS's libraries do not read: a
// compressed container (see Compress), marked by its own prefix so that it can
// never be mistaken for an uncompressed container.
package aggregation

import (
	"crypto/md5"
	"encoding/base64"
	"hash"
	"math/bits"
	"sync"
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
	// Data is the user record's payload. The Encoder keeps a reference to
	// it until Reset; it must not be modified before then.
	Data []byte
}

type entry struct {
	pk   uint64
	ehk  uint64 // index+1 into the explicit hash key table; 0 = none
	data []byte
	size int // encoded size of the Record message, without its tag and length
}

// Encoder collects user records and encodes them as one container. The zero
// value is an empty Encoder ready to use. Partition keys and explicit hash
// keys are each stored once in their tables however many records use them.
//
// An Encoder is not safe for concurrent use.
type Encoder struct {
	pks    []string
	pkIdx  map[string]uint64
	ehks   []string
	ehkIdx map[string]uint64
	recs   []entry
	proto  int // size of the protobuf message so far
}

// Len returns the number of user records added since the last Reset.
func (e *Encoder) Len() int { return len(e.recs) }

// Size returns the exact size in bytes of the container Encode would return
// now, including the prefix and the MD5 digest.
func (e *Encoder) Size() int { return e.proto + Overhead }

// SizeWith returns the exact size in bytes the container would have if r were
// added, without adding it. Callers use it to keep a container under a cap.
func (e *Encoder) SizeWith(r Record) int {
	c := e.cost(r)
	return e.proto + c.grow + Overhead
}

// Add appends r to the container.
func (e *Encoder) Add(r Record) {
	e.add(r, e.cost(r))
}

// TryAdd appends r if the container stays within maxSize bytes (prefix and
// digest included) and reports whether it did. It is SizeWith and Add in one
// step.
func (e *Encoder) TryAdd(r Record, maxSize int) bool {
	c := e.cost(r)
	if e.proto+c.grow+Overhead > maxSize {
		return false
	}
	e.add(r, c)
	return true
}

func (e *Encoder) add(r Record, c addCost) {
	if c.newPK {
		if e.pkIdx == nil {
			e.pkIdx = make(map[string]uint64)
		}
		e.pkIdx[r.PartitionKey] = c.ent.pk
		e.pks = append(e.pks, r.PartitionKey)
	}
	if c.newEHK {
		if e.ehkIdx == nil {
			e.ehkIdx = make(map[string]uint64)
		}
		e.ehkIdx[r.ExplicitHashKey] = c.ent.ehk - 1
		e.ehks = append(e.ehks, r.ExplicitHashKey)
	}
	e.recs = append(e.recs, c.ent)
	e.proto += c.grow
}

// addCost is what adding one record takes.
type addCost struct {
	grow          int // growth of the protobuf message in bytes
	newPK, newEHK bool
	ent           entry
}

// cost works out what adding r would take.
func (e *Encoder) cost(r Record) addCost {
	var c addCost
	pk, ok := e.pkIdx[r.PartitionKey]
	if !ok {
		pk = uint64(len(e.pks))
		c.newPK = true
		c.grow += fieldSize(len(r.PartitionKey))
	}
	c.ent = entry{pk: pk, data: r.Data}
	size := 1 + varintSize(pk) + fieldSize(len(r.Data))
	if r.ExplicitHashKey != "" {
		ehk, ok := e.ehkIdx[r.ExplicitHashKey]
		if !ok {
			ehk = uint64(len(e.ehks))
			c.newEHK = true
			c.grow += fieldSize(len(r.ExplicitHashKey))
		}
		c.ent.ehk = ehk + 1
		size += 1 + varintSize(ehk)
	}
	c.ent.size = size
	c.grow += fieldSize(size)
	return c
}

// Reset empties the Encoder, keeping its allocated memory for reuse, and
// drops its references to record data.
func (e *Encoder) Reset() {
	clear(e.pks)
	e.pks = e.pks[:0]
	clear(e.ehks)
	e.ehks = e.ehks[:0]
	clear(e.recs)
	e.recs = e.recs[:0]
	clear(e.pkIdx)
	clear(e.ehkIdx)
	e.proto = 0
}

// Encode returns the container in a new slice of exactly Size bytes.
func (e *Encoder) Encode() []byte {
	return e.AppendTo(make([]byte, 0, e.Size()))
}

// AppendTo appends the container to dst and returns the extended slice.
func (e *Encoder) AppendTo(dst []byte) []byte {
	if cap(dst)-len(dst) < e.Size() {
		grown := make([]byte, len(dst), len(dst)+e.Size())
		copy(grown, dst)
		dst = grown
	}
	dst = append(dst, magic[:]...)
	start := len(dst)
	for _, pk := range e.pks {
		dst = appendString(dst, tagPartitionKeyTable, pk)
	}
	for _, ehk := range e.ehks {
		dst = appendString(dst, tagExplicitHashKeyTable, ehk)
	}
	for i := range e.recs {
		r := &e.recs[i]
		dst = append(dst, tagRecords)
		dst = appendVarint(dst, uint64(r.size))
		dst = append(dst, tagPartitionKeyIndex)
		dst = appendVarint(dst, r.pk)
		if r.ehk != 0 {
			dst = append(dst, tagExplicitHashKeyIndex)
			dst = appendVarint(dst, r.ehk-1)
		}
		dst = append(dst, tagData)
		dst = appendVarint(dst, uint64(len(r.data)))
		dst = append(dst, r.data...)
	}
	sum := md5.Sum(dst[start:])
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
func (e *Encoder) Base64Size() int { return base64.StdEncoding.EncodedLen(e.Size()) }

// AppendBase64 appends the container to dst in standard base64 (RFC 4648,
// padded), as a JSON request body carries a Kinesis record's data, and
// returns the extended slice. The container itself is never held in memory
// whole: it is encoded piece by piece through a small buffer, its MD5 digest
// computed on the way.
func (e *Encoder) AppendBase64(dst []byte) []byte {
	if cap(dst)-len(dst) < e.Base64Size() {
		grown := make([]byte, len(dst), len(dst)+e.Base64Size())
		copy(grown, dst)
		dst = grown
	}
	w := b64Writers.Get().(*b64Writer)
	w.dst, w.sum = dst, md5.New()
	w.buf = append(w.buf[:0], magic[:]...)
	w.hashed = len(magic)
	for _, pk := range e.pks {
		w.buf = appendString(w.buf, tagPartitionKeyTable, pk)
		w.flush(false)
	}
	for _, ehk := range e.ehks {
		w.buf = appendString(w.buf, tagExplicitHashKeyTable, ehk)
		w.flush(false)
	}
	for i := range e.recs {
		r := &e.recs[i]
		w.buf = append(w.buf, tagRecords)
		w.buf = appendVarint(w.buf, uint64(r.size))
		w.buf = append(w.buf, tagPartitionKeyIndex)
		w.buf = appendVarint(w.buf, r.pk)
		if r.ehk != 0 {
			w.buf = append(w.buf, tagExplicitHashKeyIndex)
			w.buf = appendVarint(w.buf, r.ehk-1)
		}
		w.buf = append(w.buf, tagData)
		w.buf = appendVarint(w.buf, uint64(len(r.data)))
		for d := r.data; len(d) > 0; {
			n := max(min(len(d), b64Chunk-len(w.buf)), 0)
			w.buf = append(w.buf, d[:n]...)
			d = d[n:]
			w.flush(false)
		}
	}
	w.sum.Write(w.buf[w.hashed:])
	w.hashed = len(w.buf)
	w.buf = w.sum.Sum(w.buf)
	w.hashed = len(w.buf)
	w.flush(true)
	dst = w.dst
	w.dst, w.sum = nil, nil
	b64Writers.Put(w)
	return dst
}

// b64Chunk is the size of AppendBase64's buffer: a multiple of 3, so that
// every flush but the last encodes whole base64 groups.
const b64Chunk = 3 << 12

type b64Writer struct {
	dst    []byte
	buf    []byte
	hashed int // bytes of buf already written to sum
	sum    hash.Hash
}

var b64Writers = sync.Pool{New: func() any { return &b64Writer{buf: make([]byte, 0, b64Chunk+64)} }}

// flush encodes buf's whole base64 groups (all of it when last), once it is
// full or last, keeping the rest at its start.
func (w *b64Writer) flush(last bool) {
	if !last && len(w.buf) < b64Chunk {
		return
	}
	if w.hashed < len(w.buf) {
		w.sum.Write(w.buf[w.hashed:])
	}
	n := len(w.buf)
	if !last {
		n -= n % 3
	}
	w.dst = base64.StdEncoding.AppendEncode(w.dst, w.buf[:n])
	rest := copy(w.buf, w.buf[n:])
	w.buf = w.buf[:rest]
	w.hashed = rest
}
