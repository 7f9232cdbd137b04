package aggregation

import (
	"bytes"
	"crypto/md5"
	"strings"
)

// UserRecord is one user record taken out of a container.
type UserRecord struct {
	// PartitionKey is the user record's own partition key.
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key, or "" for none.
	ExplicitHashKey string
	// Data is the user record's payload. It shares memory with the slice
	// passed to Decode (or, for a compressed container, with the
	// decompressed container).
	Data []byte
	// SubSequenceNumber is the user record's position in its container:
	// 0, 1, 2, ... Together with the Kinesis record's sequence number it
	// identifies the user record.
	SubSequenceNumber uint64
}

// Decode takes a Kinesis record's data apart into its user records.
//
// ok is false when data is not a valid container: no prefix, too short, an
// MD5 digest that does not match, a malformed protobuf message, an index
// outside a key table, or no records at all. The caller then treats data as
// one plain user record with the Kinesis record's own partition key. Decode
// never panics, whatever data holds.
//
// Compressed containers (see Compress) are decompressed transparently.
func Decode(data []byte) (records []UserRecord, ok bool) {
	return DecodeAppend(nil, data)
}

// DecodeAppend is Decode appending to dst, so that a caller can reuse one
// slice for many records. When ok is false, dst is returned unchanged.
func DecodeAppend(dst []UserRecord, data []byte) (records []UserRecord, ok bool) {
	if bytes.HasPrefix(data, compressedMagic[:]) {
		inner, ok := decompress(data)
		if !ok || bytes.HasPrefix(inner, compressedMagic[:]) {
			return dst, false
		}
		data = inner
	}
	if len(data) < Overhead+1 || !bytes.HasPrefix(data, magic[:]) {
		return dst, false
	}
	msg := data[len(magic) : len(data)-md5.Size]
	if sum := md5.Sum(msg); !bytes.Equal(sum[:], data[len(data)-md5.Size:]) {
		return dst, false
	}
	return decodeMessage(dst, msg)
}

// IsContainer reports whether data starts like a container (compressed or
// not). It does not check the digest or the contents; Decode does.
func IsContainer(data []byte) bool {
	return bytes.HasPrefix(data, magic[:]) || bytes.HasPrefix(data, compressedMagic[:])
}

// decodeMessage parses an AggregatedRecord message.
func decodeMessage(dst []UserRecord, msg []byte) ([]UserRecord, bool) {
	// First pass: validate the framing of every field, measure the key
	// tables and count the records. The tables may come after the records
	// on the wire, so records are read in a second pass.
	var nPK, nEHK, nRec, keyBytes int
	for p := msg; len(p) > 0; {
		tag, v, rest, ok := nextField(p)
		if !ok {
			return dst, false
		}
		p = rest
		switch tag {
		case tagPartitionKeyTable:
			nPK++
			keyBytes += len(v)
		case tagExplicitHashKeyTable:
			nEHK++
			keyBytes += len(v)
		case tagRecords:
			nRec++
		}
	}
	if nRec == 0 || nPK == 0 {
		return dst, false
	}

	// All keys share one string allocation.
	var sb strings.Builder
	sb.Grow(keyBytes)
	type span struct{ off, end int }
	spans := make([]span, 0, nPK+nEHK)
	for p := msg; len(p) > 0; {
		tag, v, rest, _ := nextField(p)
		p = rest
		if tag == tagPartitionKeyTable || tag == tagExplicitHashKeyTable {
			off := sb.Len()
			sb.Write(v)
			spans = append(spans, span{off, sb.Len()})
		}
	}
	all := sb.String()
	pks := make([]string, 0, nPK)
	ehks := make([]string, 0, nEHK)
	i := 0
	for p := msg; len(p) > 0; {
		tag, _, rest, _ := nextField(p)
		p = rest
		switch tag {
		case tagPartitionKeyTable:
			pks = append(pks, all[spans[i].off:spans[i].end])
			i++
		case tagExplicitHashKeyTable:
			ehks = append(ehks, all[spans[i].off:spans[i].end])
			i++
		}
	}

	out := dst
	if cap(out)-len(out) < nRec {
		grown := make([]UserRecord, len(out), len(out)+nRec)
		copy(grown, out)
		out = grown
	}
	var sub uint64
	for p := msg; len(p) > 0; {
		tag, v, rest, _ := nextField(p)
		p = rest
		if tag != tagRecords {
			continue
		}
		r, ok := decodeRecord(v, pks, ehks)
		if !ok {
			return dst, false
		}
		r.SubSequenceNumber = sub
		sub++
		out = append(out, r)
	}
	return out, true
}

// decodeRecord parses a Record message.
func decodeRecord(msg []byte, pks, ehks []string) (UserRecord, bool) {
	var r UserRecord
	var havePK, haveData bool
	for p := msg; len(p) > 0; {
		tag, v, rest, ok := nextField(p)
		if !ok {
			return r, false
		}
		p = rest
		switch tag {
		case tagPartitionKeyIndex:
			idx, _ := readVarint(v)
			if idx >= uint64(len(pks)) {
				return r, false
			}
			r.PartitionKey = pks[idx]
			havePK = true
		case tagExplicitHashKeyIndex:
			idx, _ := readVarint(v)
			if idx >= uint64(len(ehks)) {
				return r, false
			}
			r.ExplicitHashKey = ehks[idx]
		case tagData:
			r.Data = v[:len(v):len(v)]
			haveData = true
		}
		// Tags (field 4) and unknown fields are skipped.
	}
	if !havePK || !haveData {
		return r, false
	}
	if r.Data == nil {
		r.Data = []byte{}
	}
	return r, true
}

// nextField reads one field from p. It returns the field's tag byte for
// single-byte tags with known wire types (larger field numbers come back as
// 0, which matches no known field), the field's value (the varint's bytes or
// the length-delimited content), and the rest of p. ok is false for a
// malformed field or a group (wire types 3 and 4).
func nextField(p []byte) (tag byte, v, rest []byte, ok bool) {
	key, n := readVarint(p)
	if n <= 0 {
		return 0, nil, nil, false
	}
	p = p[n:]
	if key>>3 == 0 {
		return 0, nil, nil, false // field number 0 is invalid
	}
	if key < 0x80 {
		tag = byte(key)
	}
	switch key & 7 {
	case wireVarint:
		_, n := readVarint(p)
		if n <= 0 {
			return 0, nil, nil, false
		}
		return tag, p[:n], p[n:], true
	case wireFixed64:
		if len(p) < 8 {
			return 0, nil, nil, false
		}
		return tag, p[:8], p[8:], true
	case wireBytes:
		l, n := readVarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return 0, nil, nil, false
		}
		end := n + int(l)
		return tag, p[n:end], p[end:], true
	case wireFixed32:
		if len(p) < 4 {
			return 0, nil, nil, false
		}
		return tag, p[:4], p[4:], true
	}
	return 0, nil, nil, false
}

// readVarint decodes a varint from the start of p and returns it with the
// number of bytes read; n is 0 when p ends early and -1 when the varint is
// longer than 10 bytes or overflows 64 bits.
func readVarint(p []byte) (v uint64, n int) {
	for i := 0; i < len(p) && i < 10; i++ {
		b := p[i]
		if i == 9 && b > 1 {
			return 0, -1
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, i + 1
		}
	}
	if len(p) >= 10 {
		return 0, -1
	}
	return 0, 0
}
