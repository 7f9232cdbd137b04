//go:build !amd64 || purego

package md5pair

import "crypto/md5"

// Sum2 returns the MD5 digests of a and b.
func Sum2(a, b []byte) (sumA, sumB [Size]byte) {
	return md5.Sum(a), md5.Sum(b)
}
