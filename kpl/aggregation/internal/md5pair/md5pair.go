// Package md5pair computes the MD5 digests of two messages at once. MD5's
// steps each wait on the one before, so one message keeps a processor core's
// execution units mostly idle; on amd64 the two messages' steps are
// interleaved and run in about the time of one (elsewhere, and with the
// purego build tag, Sum2 is crypto/md5 twice).
package md5pair

//go:generate go run gen.go

// Size is the size of an MD5 digest in bytes.
const Size = 16
