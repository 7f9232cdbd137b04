//go:build !purego

package md5lanes

import (
	"crypto/md5"
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

// blocks2 compresses n 64-byte blocks of each of p0 and p1 into the states
// s0 and s1.
//
//go:noescape
func blocks2(s0, s1 *[4]uint32, p0, p1 *byte, n int)

// blocks1 compresses n 64-byte blocks of p0 into the state s0.
//
//go:noescape
func blocks1(s0 *[4]uint32, p0 *byte, n int)

// blocks8 compresses n 64-byte blocks of each of the eight messages at p
// into their states: s[0][l], s[1][l], s[2][l] and s[3][l] are message l's.
// It needs AVX2.
//
//go:noescape
func blocks8(s *[4][8]uint32, p *[8]*byte, n int)

// blocks1x is blocks1 with AVX-512 instructions on the first lane of X
// registers (VPTERNLOGD, VPROLD), which shorten each step's dependency
// chain. It needs AVX-512F and AVX-512VL.
//
//go:noescape
func blocks1x(s *[4]uint32, p *byte, n int)

// blocks8x is blocks8 with AVX-512VL's VPTERNLOGD and VPROLD. It needs
// AVX-512F and AVX-512VL.
//
//go:noescape
func blocks8x(s *[4][8]uint32, p *[8]*byte, n int)

// hasAVX2 tells whether blocks8 can run, hasAVX512 whether blocks1x and
// blocks8x can.
var (
	hasAVX2   = cpu.X86.HasAVX2
	hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL
)

// Sum returns the MD5 digest of p. With AVX-512 it runs in about seven
// eighths of crypto/md5's time (a step's chain is four operations instead
// of four and a half on average); without, it is crypto/md5's.
func Sum(p []byte) [Size]byte {
	if !hasAVX512 {
		return md5.Sum(p)
	}
	s := initial
	return finish(&s, p, 0)
}

// SumMany sets sums[i] to the MD5 digest of msgs[i], for every i (sums must
// be at least as long as msgs): eight at a time with AVX2, else two at a
// time. Each group's padded last blocks run in the lanes too when every
// message of the group needs the same number of them past the group's
// shortest message (messages of about the same length, or short ones like
// partition keys); otherwise the part beyond the shortest is digested one
// message at a time.
func SumMany(msgs [][]byte, sums [][Size]byte) {
	for len(msgs) > 0 {
		k := min(len(msgs), 8)
		if !hasAVX2 || k < 3 {
			k = min(k, 2)
		}
		switch k {
		case 1:
			sums[0] = Sum(msgs[0])
		case 2:
			sums[0], sums[1] = Sum2(msgs[0], msgs[1])
		default:
			sumLanes(msgs[:k], sums[:k])
		}
		msgs, sums = msgs[k:], sums[k:]
	}
}

// sumLanes digests three to eight messages with blocks8, the lanes past
// len(msgs) repeating the last message. When what is left of every message
// after their common whole blocks pads to the same number of blocks (one or
// two: messages of about the same length, short keys among them), the
// padded tails run in the lanes too; otherwise each message is finished on
// its own.
func sumLanes(msgs [][]byte, sums [][Size]byte) {
	var st [4][8]uint32
	var ptrs [8]*byte
	for l := range 8 {
		for q := range 4 {
			st[q][l] = initial[q]
		}
	}
	n := len(msgs[0]) / 64
	for _, m := range msgs {
		n = min(n, len(m)/64)
	}
	if n > 0 {
		for l := range 8 {
			ptrs[l] = &msgs[min(l, len(msgs)-1)][0]
		}
		lanes8(&st, &ptrs, n)
	}
	var tails [8][128]byte
	blocks := 0
	for l, m := range msgs {
		b := padTail(&tails[l], m, 64*n)
		if b == 0 || blocks != 0 && b != blocks {
			blocks = 0
			break
		}
		blocks = b
	}
	if blocks > 0 {
		for l := range 8 {
			ptrs[l] = &tails[min(l, len(msgs)-1)][0]
		}
		lanes8(&st, &ptrs, blocks)
		for l := range msgs {
			for q := range 4 {
				binary.LittleEndian.PutUint32(sums[l][4*q:], st[q][l])
			}
		}
		return
	}
	for l, m := range msgs {
		s := [4]uint32{st[0][l], st[1][l], st[2][l], st[3][l]}
		sums[l] = finish(&s, m, 64*n)
	}
}

// lanes8 runs blocks8x where AVX-512 allows, blocks8 otherwise.
func lanes8(st *[4][8]uint32, ptrs *[8]*byte, n int) {
	if hasAVX512 {
		blocks8x(st, ptrs, n)
	} else {
		blocks8(st, ptrs, n)
	}
}

// padTail writes the rest of p from offset done, padded as MD5's last
// blocks are (a 1 bit, zeros, the message's length in bits), into t and
// returns the number of blocks written: 1 or 2, or 0 when the rest holds a
// whole block or more and does not fit.
func padTail(t *[128]byte, p []byte, done int) int {
	rest := p[done:]
	if len(rest) >= 64 {
		return 0
	}
	n := copy(t[:], rest)
	t[n] = 0x80
	end := 64
	if n >= 56 {
		end = 128
	}
	binary.LittleEndian.PutUint64(t[end-8:], uint64(len(p))<<3)
	return end / 64
}

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
		if hasAVX512 {
			blocks1x(s, &p[done], n)
		} else {
			blocks1(s, &p[done], n)
		}
		done += 64 * n
	}
	var last [128]byte
	if k := padTail(&last, p, done); hasAVX512 {
		blocks1x(s, &last[0], k)
	} else {
		blocks1(s, &last[0], k)
	}
	for i, v := range s {
		binary.LittleEndian.PutUint32(sum[4*i:], v)
	}
	return sum
}
