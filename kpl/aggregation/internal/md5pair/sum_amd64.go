//go:build !purego

package md5pair

import "encoding/binary"

// blocks2 compresses n 64-byte blocks of each of p0 and p1 into the states
// s0 and s1.
//
//go:noescape
func blocks2(s0, s1 *[4]uint32, p0, p1 *byte, n int)

// blocks1 compresses n 64-byte blocks of p0 into the state s0.
//
//go:noescape
func blocks1(s0 *[4]uint32, p0 *byte, n int)

// initial is MD5's initial state.
var initial = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}

// Sum2 returns the MD5 digests of a and b.
func Sum2(a, b []byte) (sumA, sumB [Size]byte) {
	sa, sb := initial, initial
	done := 0 // bytes of each compressed together
	if n := min(len(a), len(b)) / 64; n > 0 {
		blocks2(&sa, &sb, &a[0], &b[0], n)
		done = 64 * n
	}
	return finish(&sa, a, done), finish(&sb, b, done)
}

// finish compresses the blocks of p from offset done on, then the padded
// last block or two, into s and returns the digest.
func finish(s *[4]uint32, p []byte, done int) (sum [Size]byte) {
	if n := (len(p) - done) / 64; n > 0 {
		blocks1(s, &p[done], n)
		done += 64 * n
	}
	// The rest, a 1 bit, zeros, and the message's length in bits.
	var last [128]byte
	n := copy(last[:], p[done:])
	last[n] = 0x80
	end := 64
	if n >= 56 {
		end = 128
	}
	binary.LittleEndian.PutUint64(last[end-8:], uint64(len(p))<<3)
	blocks1(s, &last[0], end/64)
	for i, v := range s {
		binary.LittleEndian.PutUint32(sum[4*i:], v)
	}
	return sum
}
