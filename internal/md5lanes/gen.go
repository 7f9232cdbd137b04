//go:build ignore

// gen writes blocks_amd64.s, the MD5 block functions of package md5lanes:
// blocks2 runs the compression function over two messages at once, the two
// streams' instructions interleaved so that the processor executes one
// stream's steps while the other waits on its dependency chain; blocks1
// runs it over one message; blocks8 runs it over eight messages, one in
// each 32-bit lane of the AVX2 registers. MD5 is RFC 1321.
//
//	go run gen.go
package main

import (
	"bytes"
	"fmt"
	"log"
	"math"
	"os"
)

// shifts are the rotation amounts of the 64 steps.
var shifts = [4][4]int{{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}}

// stream is the registers one message's state lives in while a block is
// compressed.
type stream struct {
	state [4]string // a, b, c, d
	tmp   string
	ptr   string // the block being read
}

var streams = []stream{
	{[4]string{"AX", "BX", "CX", "DX"}, "R8", "SI"},
	{[4]string{"R9", "R10", "R11", "R12"}, "R13", "DI"},
}

// word is the index of the message word step i reads.
func word(i int) int {
	switch i / 16 {
	case 0:
		return i
	case 1:
		return (5*i + 1) % 16
	case 2:
		return (3*i + 5) % 16
	}
	return (7 * i) % 16
}

// step returns the instructions of step i for one stream:
// a = b + rotl(a + f(b, c, d) + K[i] + X[word(i)], shift).
func step(i int, s stream) []string {
	r := (4 - i%4) % 4 // a, b, c, d rotate one place every step
	a, b, c, d := s.state[r], s.state[(r+1)%4], s.state[(r+2)%4], s.state[(r+3)%4]
	t := s.tmp
	var f []string
	switch i / 16 {
	case 0: // F = d ^ (b & (c ^ d))
		f = []string{"MOVL " + d + ", " + t, "XORL " + c + ", " + t, "ANDL " + b + ", " + t, "XORL " + d + ", " + t}
	case 1: // G = c ^ (d & (b ^ c))
		f = []string{"MOVL " + b + ", " + t, "XORL " + c + ", " + t, "ANDL " + d + ", " + t, "XORL " + c + ", " + t}
	case 2: // H = b ^ c ^ d
		f = []string{"MOVL " + d + ", " + t, "XORL " + c + ", " + t, "XORL " + b + ", " + t}
	default: // I = c ^ (b | ^d)
		f = []string{"MOVL " + d + ", " + t, "NOTL " + t, "ORL " + b + ", " + t, "XORL " + c + ", " + t}
	}
	k := int32(constant(i))
	return append(f,
		fmt.Sprintf("LEAL %d(%s)(%s*1), %s", k, a, t, a),
		fmt.Sprintf("ADDL %d(%s), %s", 4*word(i), s.ptr, a),
		fmt.Sprintf("ROLL $%d, %s", shifts[i/16][i%4], a),
		"ADDL "+b+", "+a)
}

// function writes a function compressing n 64-byte blocks of each of
// len(ss) messages into their states:
// func name(s0[, s1] *[4]uint32, p0[, p1] *byte, n int).
func function(w *bytes.Buffer, name string, ss []stream) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	n := len(ss)
	p("// func %s(%s) (see sum_amd64.go)", name, map[int]string{1: "s0 *[4]uint32, p0 *byte, n int", 2: "s0, s1 *[4]uint32, p0, p1 *byte, n int"}[n])
	p("TEXT ·%s(SB), NOSPLIT, $%d-%d", name, 16*n, 16*n+8)
	for j, s := range ss {
		p("\tMOVQ s%d+%d(FP), R14", j, 8*j)
		for q, r := range s.state {
			p("\tMOVL %d(R14), %s", 4*q, r)
		}
		p("\tMOVQ p%d+%d(FP), %s", j, 8*(n+j), s.ptr)
	}
	p("\tMOVQ n+%d(FP), R14", 16*n)
	p("\tTESTQ R14, R14")
	p("\tJZ done")
	p("loop:")
	// The state before the block, added back after it, is kept on the
	// stack.
	for j, s := range ss {
		for q, r := range s.state {
			p("\tMOVL %s, %d(SP)", r, 16*j+4*q)
		}
	}
	for i := range 64 {
		var ops [][]string
		for _, s := range ss {
			ops = append(ops, step(i, s))
		}
		for k := range ops[0] {
			for _, o := range ops {
				p("\t%s", o[k])
			}
		}
	}
	for j, s := range ss {
		for q, r := range s.state {
			p("\tADDL %d(SP), %s", 16*j+4*q, r)
		}
		p("\tADDQ $64, %s", s.ptr)
	}
	p("\tDECQ R14")
	p("\tJNZ loop")
	p("done:")
	for j, s := range ss {
		p("\tMOVQ s%d+%d(FP), R14", j, 8*j)
		for q, r := range s.state {
			p("\tMOVL %s, %d(R14)", r, 4*q)
		}
	}
	p("\tRET")
	p("")
}

// constant returns MD5's additive constant of step i.
func constant(i int) uint32 {
	return uint32(math.Abs(math.Sin(float64(i+1))) * (1 << 32))
}

// lanes writes blocks8, which compresses n 64-byte blocks of each of eight
// messages into their states, a, b, c and d each a vector of the eight
// messages' words: func blocks8(s *[4][8]uint32, p *[8]*byte, n int). Each
// block is first transposed onto the stack, word j of every message
// together, so that a step reads its message word of all eight at once.
//
// With x, it writes blocks8x instead, the same with AVX-512VL's VPTERNLOGD
// for the round functions and VPROLD for the rotations (one instruction
// each where AVX2 takes three).
func lanes(w *bytes.Buffer, x bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	name, sfx := "blocks8", "8"
	if x {
		name, sfx = "blocks8x", "8x"
	} else {
		for i := range 64 {
			for l := range 8 {
				p("DATA k8<>+%d(SB)/4, $0x%08x", 32*i+4*l, constant(i))
			}
		}
		p("GLOBL k8<>(SB), RODATA|NOPTR, $2048")
		p("")
	}
	p("// func %s(s *[4][8]uint32, p *[8]*byte, n int) (see sum_amd64.go)", name)
	p("TEXT ·%s(SB), NOSPLIT, $512-24", name)
	p("\tMOVQ s+0(FP), AX")
	for q := range 4 {
		p("\tVMOVDQU %d(AX), Y%d", 32*q, q)
	}
	p("\tMOVQ p+8(FP), BX")
	p("\tMOVQ n+16(FP), CX")
	p("\tXORQ DX, DX")            // offset of the block in each message
	p("\tVPCMPEQD Y15, Y15, Y15") // all ones, for NOT
	p("\tTESTQ CX, CX")
	p("\tJZ done%s", sfx)
	p("loop%s:", sfx)
	for l := range 8 {
		p("\tMOVQ %d(BX), SI", 8*l)
		for j := range 16 {
			p("\tMOVL %d(SI)(DX*1), R8", 4*j)
			p("\tMOVL R8, %d(SP)", 32*j+4*l)
		}
	}
	for q := range 4 {
		p("\tVMOVDQA Y%d, Y%d", q, 8+q)
	}
	names := [4]string{"Y0", "Y1", "Y2", "Y3"}
	for i := range 64 {
		r := (4 - i%4) % 4
		a, b, c, d := names[r], names[(r+1)%4], names[(r+2)%4], names[(r+3)%4]
		t, t2 := "Y4", "Y5"
		var ops []string
		switch {
		case x:
			ops = []string{"VMOVDQA " + d + ", " + t, fmt.Sprintf("VPTERNLOGD $0x%02x, %s, %s, %s", ternary(rounds[i/16]), b, c, t)}
		case i/16 == 0: // F = d ^ (b & (c ^ d))
			ops = []string{"VPXOR " + c + ", " + d + ", " + t, "VPAND " + b + ", " + t + ", " + t, "VPXOR " + d + ", " + t + ", " + t}
		case i/16 == 1: // G = c ^ (d & (b ^ c))
			ops = []string{"VPXOR " + b + ", " + c + ", " + t, "VPAND " + d + ", " + t + ", " + t, "VPXOR " + c + ", " + t + ", " + t}
		case i/16 == 2: // H = b ^ c ^ d
			ops = []string{"VPXOR " + c + ", " + d + ", " + t, "VPXOR " + b + ", " + t + ", " + t}
		default: // I = c ^ (b | ^d)
			ops = []string{"VPXOR Y15, " + d + ", " + t, "VPOR " + b + ", " + t + ", " + t, "VPXOR " + c + ", " + t + ", " + t}
		}
		s := shifts[i/16][i%4]
		ops = append(ops,
			fmt.Sprintf("VPADDD k8<>+%d(SB), %s, %s", 32*i, a, a),
			fmt.Sprintf("VPADDD %d(SP), %s, %s", 32*word(i), a, a),
			fmt.Sprintf("VPADDD %s, %s, %s", t, a, a))
		if x {
			ops = append(ops, fmt.Sprintf("VPROLD $%d, %s, %s", s, a, a))
		} else {
			ops = append(ops,
				fmt.Sprintf("VPSLLD $%d, %s, %s", s, a, t2),
				fmt.Sprintf("VPSRLD $%d, %s, %s", 32-s, a, a),
				fmt.Sprintf("VPOR %s, %s, %s", t2, a, a))
		}
		ops = append(ops, fmt.Sprintf("VPADDD %s, %s, %s", b, a, a))
		for _, o := range ops {
			p("\t%s", o)
		}
	}
	for q := range 4 {
		p("\tVPADDD Y%d, Y%d, Y%d", 8+q, q, q)
	}
	p("\tADDQ $64, DX")
	p("\tDECQ CX")
	p("\tJNZ loop%s", sfx)
	p("done%s:", sfx)
	for q := range 4 {
		p("\tVMOVDQU Y%d, %d(AX)", q, 32*q)
	}
	p("\tVZEROUPPER")
	p("\tRET")
}

// ternary returns the VPTERNLOGD immediate of a round's function f(b, c,
// d) when the instruction's first operand (its destination) holds d, the
// second c and the third b: bit A<<2|B<<1|C of the immediate is f(C, B, A).
func ternary(f func(b, c, d bool) bool) int {
	imm := 0
	for idx := range 8 {
		if f(idx&1 != 0, idx&2 != 0, idx&4 != 0) {
			imm |= 1 << idx
		}
	}
	return imm
}

// rounds are MD5's four round functions.
var rounds = [4]func(b, c, d bool) bool{
	func(b, c, d bool) bool { return b && c || !b && d }, // F
	func(b, c, d bool) bool { return b && d || c && !d }, // G
	func(b, c, d bool) bool { return b != c != d },       // H
	func(b, c, d bool) bool { return c != (b || !d) },    // I
}

// single writes blocks1x, which compresses n 64-byte blocks of one message
// with the AVX-512 instructions on the first lane of X registers:
// VPTERNLOGD computes each step's round function in one instruction, and
// VPROLD rotates in one, so a step's dependency chain is four operations
// (the function of the word just computed, two additions and the
// rotation), where the general-purpose registers need five in rounds F and
// I. func blocks1x(s *[4]uint32, p *byte, n int).
func single(w *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	for i := range 64 {
		p("DATA k1<>+%d(SB)/4, $0x%08x", 4*i, constant(i))
	}
	p("GLOBL k1<>(SB), RODATA|NOPTR, $256")
	p("")
	p("// func blocks1x(s *[4]uint32, p *byte, n int) (see sum_amd64.go)")
	p("TEXT ·blocks1x(SB), NOSPLIT, $0-24")
	p("\tMOVQ s+0(FP), AX")
	for q := range 4 {
		p("\tVMOVD %d(AX), X%d", 4*q, q)
	}
	p("\tMOVQ p+8(FP), SI")
	p("\tMOVQ n+16(FP), CX")
	p("\tTESTQ CX, CX")
	p("\tJZ done1x")
	p("loop1x:")
	for q := range 4 {
		p("\tVMOVDQA X%d, X%d", q, 8+q)
	}
	names := [4]string{"X0", "X1", "X2", "X3"}
	for i := range 64 {
		r := (4 - i%4) % 4
		a, b, c, d := names[r], names[(r+1)%4], names[(r+2)%4], names[(r+3)%4]
		p("\tVPADDD.BCST %d(SI), %s, %s", 4*word(i), a, a)
		p("\tVPADDD.BCST k1<>+%d(SB), %s, %s", 4*i, a, a)
		p("\tVMOVDQA %s, X4", d)
		p("\tVPTERNLOGD $0x%02x, %s, %s, X4", ternary(rounds[i/16]), b, c)
		p("\tVPADDD X4, %s, %s", a, a)
		p("\tVPROLD $%d, %s, %s", shifts[i/16][i%4], a, a)
		p("\tVPADDD %s, %s, %s", b, a, a)
	}
	for q := range 4 {
		p("\tVPADDD X%d, X%d, X%d", 8+q, q, q)
	}
	p("\tADDQ $64, SI")
	p("\tDECQ CX")
	p("\tJNZ loop1x")
	p("done1x:")
	for q := range 4 {
		p("\tVMOVD X%d, %d(AX)", q, 4*q)
	}
	p("\tRET")
	p("")
}

func main() {
	var w bytes.Buffer
	w.WriteString("// Code generated by gen.go; DO NOT EDIT.\n\n//go:build !purego\n\n#include \"textflag.h\"\n\n")
	function(&w, "blocks2", streams)
	function(&w, "blocks1", streams[:1])
	single(&w)
	lanes(&w, false)
	w.WriteString("\n")
	lanes(&w, true)
	if err := os.WriteFile("blocks_amd64.s", w.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
