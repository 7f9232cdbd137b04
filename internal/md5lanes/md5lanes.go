// Package md5lanes computes the MD5 digests of several messages at once.
// MD5's steps each wait on the one before, so one message keeps a processor
// core's execution units mostly idle. On amd64, Sum2 interleaves two
// messages' steps, which run in about the time of one, and SumMany runs
// eight messages side by side in the lanes of the AVX2 vector registers
// (two at a time without AVX2). Elsewhere, and with the purego build tag,
// both are crypto/md5 once per message.
package md5lanes

//go:generate go run gen.go

// Size is the size of an MD5 digest in bytes.
const Size = 16
