package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
)

// kplMagic starts every KPL aggregated record.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// userRecords returns how many user records a Kinesis record holds: the
// number of records in a valid KPL aggregated container, else 1 (a record
// without the prefix, too short, with a bad MD5 or bad protobuf is a plain
// record, as the KCL treats it).
func userRecords(data []byte) int {
	if len(data) < len(kplMagic)+md5.Size || !bytes.HasPrefix(data, kplMagic) {
		return 1
	}
	msg := data[len(kplMagic) : len(data)-md5.Size]
	sum := md5.Sum(msg)
	if !bytes.Equal(sum[:], data[len(data)-md5.Size:]) {
		return 1
	}
	n, ok := countField3(msg)
	if !ok || n == 0 {
		return 1
	}
	return n
}

// countField3 counts the occurrences of field 3 (records) in a protobuf
// AggregatedRecord, checking that the message parses.
func countField3(msg []byte) (int, bool) {
	n := 0
	for len(msg) > 0 {
		tag, k := binary.Uvarint(msg)
		if k <= 0 {
			return 0, false
		}
		msg = msg[k:]
		field, wire := tag>>3, tag&7
		switch wire {
		case 0: // varint
			_, k := binary.Uvarint(msg)
			if k <= 0 {
				return 0, false
			}
			msg = msg[k:]
		case 1: // 64-bit
			if len(msg) < 8 {
				return 0, false
			}
			msg = msg[8:]
		case 2: // length-delimited
			l, k := binary.Uvarint(msg)
			if k <= 0 || l > uint64(len(msg)-k) {
				return 0, false
			}
			msg = msg[k+int(l):]
			if field == 3 {
				n++
			}
		case 5: // 32-bit
			if len(msg) < 4 {
				return 0, false
			}
			msg = msg[4:]
		default:
			return 0, false
		}
	}
	return n, true
}
