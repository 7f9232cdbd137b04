package md5lanes

import (
	"crypto/md5"
	"math/rand/v2"
	"testing"
)

func TestSum2(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	// Every length around the block and padding boundaries, against
	// every other, and longer messages of random lengths.
	var lengths []int
	for n := range 200 {
		lengths = append(lengths, n)
	}
	for range 50 {
		lengths = append(lengths, r.IntN(70000))
	}
	for _, la := range lengths {
		a := random(la)
		for _, lb := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 128, r.IntN(70000), la} {
			b := random(lb)
			sa, sb := Sum2(a, b)
			if sa != md5.Sum(a) || sb != md5.Sum(b) {
				t.Fatalf("Sum2 of %d and %d bytes: %x %x, want %x %x", la, lb, sa, sb, md5.Sum(a), md5.Sum(b))
			}
		}
	}
}

func TestSum2DoesNotAllocate(t *testing.T) {
	a, b := make([]byte, 5000), make([]byte, 3000)
	if n := testing.AllocsPerRun(10, func() { Sum2(a, b) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

var msgA, msgB = make([]byte, 51200), make([]byte, 51200)

// BenchmarkSum2 and BenchmarkMD5Twice compare two 50 KB digests at once
// with crypto/md5 one after the other.
func BenchmarkSum2(b *testing.B) {
	b.SetBytes(2 * 51200)
	for b.Loop() {
		Sum2(msgA, msgB)
	}
}

func BenchmarkMD5Twice(b *testing.B) {
	b.SetBytes(2 * 51200)
	for b.Loop() {
		md5.Sum(msgA)
		md5.Sum(msgB)
	}
}

func TestSumMany(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for iter := range 300 {
		msgs := make([][]byte, r.IntN(20))
		for i := range msgs {
			n := r.IntN(3000)
			if r.IntN(4) == 0 {
				n = 2000 // groups of equal lengths, as a consumer's batch mostly is
			}
			msgs[i] = randomBytes(r, n)
		}
		checkSumMany(t, iter, msgs)
	}
}

func TestSumManyDoesNotAllocate(t *testing.T) {
	msgs := [][]byte{make([]byte, 5000), make([]byte, 3000), make([]byte, 100), make([]byte, 7000)}
	sums := make([][Size]byte, len(msgs))
	if n := testing.AllocsPerRun(10, func() { SumMany(msgs, sums) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// BenchmarkSumMany reports eight 50 KB digests at once.
func BenchmarkSumMany(b *testing.B) {
	msgs := make([][]byte, 8)
	for i := range msgs {
		msgs[i] = make([]byte, 51200)
	}
	sums := make([][Size]byte, len(msgs))
	b.SetBytes(8 * 51200)
	for b.Loop() {
		SumMany(msgs, sums)
	}
}

// TestSumManyShort checks messages whose padded tails run in the lanes:
// short keys, lengths around the padding boundary (55/56 bytes) and one
// block past it, alone and mixed with longer ones.
func TestSumManyShort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for iter := range 2000 {
		msgs := make([][]byte, 1+r.IntN(17))
		base := r.IntN(140)
		for i := range msgs {
			n := base + r.IntN(3)
			switch r.IntN(6) {
			case 0:
				n = 16 + r.IntN(17) // a partition key
			case 1:
				n = r.IntN(200)
			}
			msgs[i] = randomBytes(r, n)
		}
		checkSumMany(t, iter, msgs)
	}
}

// BenchmarkSumManyKeys reports eight partition keys' digests at once.
func BenchmarkSumManyKeys(b *testing.B) {
	msgs := make([][]byte, 8)
	for i := range msgs {
		msgs[i] = []byte("partition-key-0000000" + string(rune('0'+i)))
	}
	sums := make([][Size]byte, len(msgs))
	b.SetBytes(8)
	for b.Loop() {
		SumMany(msgs, sums)
	}
}

func BenchmarkMD5Keys(b *testing.B) {
	msgs := make([][]byte, 8)
	for i := range msgs {
		msgs[i] = []byte("partition-key-0000000" + string(rune('0'+i)))
	}
	b.SetBytes(8)
	for b.Loop() {
		for _, m := range msgs {
			md5.Sum(m)
		}
	}
}

// TestSum checks Sum against crypto/md5 for every length around the block
// and padding boundaries and longer ones.
func TestSum(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for n := range 300 {
		m := make([]byte, n+r.IntN(2)*r.IntN(70000))
		for i := range m {
			m[i] = byte(r.Uint32())
		}
		if got, want := Sum(m), md5.Sum(m); got != want {
			t.Fatalf("%d bytes: %x, want %x", len(m), got, want)
		}
	}
}

// BenchmarkSum compares Sum with crypto/md5 on one 50 KB message.
func BenchmarkSum(b *testing.B) {
	b.Run("md5lanes", func(b *testing.B) {
		b.SetBytes(int64(len(msgA)))
		for b.Loop() {
			Sum(msgA)
		}
	})
	b.Run("crypto-md5", func(b *testing.B) {
		b.SetBytes(int64(len(msgA)))
		for b.Loop() {
			md5.Sum(msgA)
		}
	})
}

// checkSumMany checks SumMany's digests of msgs against crypto/md5's.
func checkSumMany(t *testing.T, iter int, msgs [][]byte) {
	t.Helper()
	sums := make([][Size]byte, len(msgs))
	SumMany(msgs, sums)
	for i, m := range msgs {
		if sums[i] != md5.Sum(m) {
			t.Fatalf("iteration %d: message %d of %d (%d bytes): %x, want %x", iter, i, len(msgs), len(m), sums[i], md5.Sum(m))
		}
	}
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
