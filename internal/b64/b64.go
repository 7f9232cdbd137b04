// Package b64 encodes standard base64 (RFC 4648, padded), the encoding of
// binary data in the JSON bodies of AWS requests, at about twice the speed
// of encoding/base64: each 12 bits of input become two output characters
// through one lookup in a 4,096-entry table of character pairs, and eight
// characters are stored at a time. The output is identical to
// base64.StdEncoding's.
package b64

import (
	"encoding/base64"
	"encoding/binary"
)

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// pairs maps 12 bits to their two characters, the first in the low byte.
var pairs = func() (t [1 << 12]uint16) {
	for i := range t {
		t[i] = uint16(alphabet[i>>6]) | uint16(alphabet[i&63])<<8
	}
	return t
}()

// EncodedLen returns the length of the encoding of n bytes.
func EncodedLen(n int) int { return base64.StdEncoding.EncodedLen(n) }

// AppendEncode appends the encoding of src to dst and returns the extended
// slice, as base64.StdEncoding.AppendEncode does.
func AppendEncode(dst, src []byte) []byte {
	n := EncodedLen(len(src))
	if cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+n]
}

// Encode writes the encoding of src to dst, which must hold at least
// EncodedLen(len(src)) bytes, as base64.StdEncoding.Encode does.
func Encode(dst, src []byte) {
	tab := &pairs
	// 12 bytes in, 16 out, reading 14: two big-endian words of which the
	// top 48 bits are used.
	for len(src) >= 14 && len(dst) >= 16 {
		v := binary.BigEndian.Uint64(src)
		w := binary.BigEndian.Uint64(src[6:])
		binary.LittleEndian.PutUint64(dst, uint64(tab[v>>52])|uint64(tab[v>>40&0xfff])<<16|
			uint64(tab[v>>28&0xfff])<<32|uint64(tab[v>>16&0xfff])<<48)
		binary.LittleEndian.PutUint64(dst[8:], uint64(tab[w>>52])|uint64(tab[w>>40&0xfff])<<16|
			uint64(tab[w>>28&0xfff])<<32|uint64(tab[w>>16&0xfff])<<48)
		src, dst = src[12:], dst[16:]
	}
	base64.StdEncoding.Encode(dst, src)
}
