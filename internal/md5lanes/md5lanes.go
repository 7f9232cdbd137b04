// Package md5lanes computes the MD5 digests of several messages at once.
// MD5's steps each wait on the one before, so one message keeps a processor
// core's execution units mostly idle. On amd64, Sum2 interleaves two
// messages' steps, which run in about the time of one, and SumMany runs
// eight messages side by side in the lanes of the AVX2 vector registers
// (two at a time without AVX2). Sum digests one message; with AVX-512 it
// computes each step's round function with one VPTERNLOGD and rotates with
// one VPROLD, which shortens the chain of dependent operations every step
// waits on, in about seven eighths of crypto/md5's time. Elsewhere, and
// with the purego build tag, all are crypto/md5 once per message.
package md5lanes

//go:generate go run gen.go

// Size is the size of an MD5 digest in bytes.
const Size = 16
