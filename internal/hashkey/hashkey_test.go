package hashkey

import (
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestFromPartitionKeyMatchesBigEndianMD5(t *testing.T) {
	for _, pk := range []string{"", "a", "user-42", "ключ", string(make([]byte, 256))} {
		sum := md5.Sum([]byte(pk))
		want := new(big.Int).SetBytes(sum[:])
		if got := FromPartitionKey(pk).Big(); got.Cmp(want) != 0 {
			t.Errorf("FromPartitionKey(%q) = %s, want %s", pk, got, want)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1000; i++ {
		k := Key{Hi: r.Uint64() >> (r.IntN(64)), Lo: r.Uint64()}
		got, err := Parse(k.String())
		if err != nil || got != k {
			t.Fatalf("Parse(%s) = %v, %v; want %v", k, got, err, k)
		}
		if k.String() != k.Big().String() {
			t.Fatalf("String() = %s, Big() = %s", k, k.Big())
		}
	}
	if got := MustParse("340282366920938463463374607431768211455"); got != Max {
		t.Fatalf("max = %v", got)
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "-1", "1.5", "abc", " 1", "340282366920938463463374607431768211456", "9999999999999999999999999999999999999999"} {
		if _, err := Parse(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) err = %v, want ErrInvalid", s, err)
		}
	}
}

func TestMidAndRange(t *testing.T) {
	if got, want := Mid(Key{}, Max).Big(), new(big.Int).Rsh(Max.Big(), 1); got.Cmp(want) != 0 {
		t.Fatalf("Mid(0, max) = %s, want %s", got, want)
	}
	r, err := ParseRange("10", "20")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[uint64]bool{9: false, 10: true, 15: true, 20: true, 21: false} {
		if got := r.Contains(Key{Lo: k}); got != want {
			t.Errorf("Contains(%d) = %v", k, got)
		}
	}
	if _, err := ParseRange("20", "10"); err == nil {
		t.Fatal("inverted range accepted")
	}
}

func TestFromPartitionKeys(t *testing.T) {
	for n := range 30 {
		pks := make([]string, n)
		for i := range pks {
			pks[i] = strings.Repeat("k", i*3) + fmt.Sprint(i)
		}
		keys := make([]Key, n)
		FromPartitionKeys(pks, keys)
		for i, pk := range pks {
			if keys[i] != FromPartitionKey(pk) {
				t.Fatalf("%d keys: key %d (%q): %v, want %v", n, i, pk, keys[i], FromPartitionKey(pk))
			}
		}
	}
}
