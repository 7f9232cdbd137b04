//go:build !amd64 || purego

package md5lanes

import "crypto/md5"

// Sum returns the MD5 digest of p.
func Sum(p []byte) [Size]byte { return md5.Sum(p) }

// Sum2 returns the MD5 digests of a and b.
func Sum2(a, b []byte) (sumA, sumB [Size]byte) {
	return md5.Sum(a), md5.Sum(b)
}

// SumMany sets sums[i] to the MD5 digest of msgs[i], for every i (sums must
// be at least as long as msgs).
func SumMany(msgs [][]byte, sums [][Size]byte) {
	for i, m := range msgs {
		sums[i] = md5.Sum(m)
	}
}
