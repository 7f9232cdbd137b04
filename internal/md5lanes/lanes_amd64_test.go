//go:build !purego

package md5lanes

import "testing"

// TestSumManyWithoutAVX2 runs TestSumMany as on a processor without AVX2.
func TestSumManyWithoutAVX2(t *testing.T) {
	defer func(v bool) { hasAVX2 = v }(hasAVX2)
	hasAVX2 = false
	TestSumMany(t)
}

// TestSumWithoutAVX512 runs TestSum and TestSumMany as on a processor
// without AVX-512.
func TestSumWithoutAVX512(t *testing.T) {
	defer func(v bool) { hasAVX512 = v }(hasAVX512)
	hasAVX512 = false
	TestSum(t)
	TestSumMany(t)
	TestSumManyShort(t)
}
