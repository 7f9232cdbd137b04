//go:build !purego

package md5lanes

import "testing"

// TestSumManyWithoutAVX2 runs TestSumMany as on a processor without AVX2.
func TestSumManyWithoutAVX2(t *testing.T) {
	defer func(v bool) { hasAVX2 = v }(hasAVX2)
	hasAVX2 = false
	TestSumMany(t)
}
