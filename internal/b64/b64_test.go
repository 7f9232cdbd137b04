package b64

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

func TestEncodeMatchesTheStandardLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 400 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		got := AppendEncode([]byte("prefix"), src)
		want := base64.StdEncoding.AppendEncode([]byte("prefix"), src)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: got %q, want %q", n, got, want)
		}
		into := make([]byte, 0, 6+EncodedLen(n))
		into = append(into, "prefix"...)
		if got := AppendEncode(into, src); !bytes.Equal(got, want) || &got[0] != &into[0] {
			t.Fatalf("%d bytes with room: got %q, want %q in place", n, got, want)
		}
	}
}

func FuzzEncode(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("\xff\xfe\xfd\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if got, want := AppendEncode(nil, src), base64.StdEncoding.AppendEncode(nil, src); !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

var benchSrc = func() []byte {
	b := make([]byte, 50_000)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

// BenchmarkEncode compares Encode with encoding/base64 on a 50 KB
// container's worth of bytes.
func BenchmarkEncode(b *testing.B) {
	dst := make([]byte, EncodedLen(len(benchSrc)))
	b.Run("b64", func(b *testing.B) {
		b.SetBytes(int64(len(benchSrc)))
		for b.Loop() {
			Encode(dst, benchSrc)
		}
	})
	b.Run("encoding-base64", func(b *testing.B) {
		b.SetBytes(int64(len(benchSrc)))
		for b.Loop() {
			base64.StdEncoding.Encode(dst, benchSrc)
		}
	})
}
