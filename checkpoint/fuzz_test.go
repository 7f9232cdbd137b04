package checkpoint

import (
	"strconv"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts orders as a total order
// consistent with equality, and prints back to what was parsed.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "49590338271490256608559692538361571095921575989136588801", "TRIM_HORIZON", "LATEST",
		"AT_TIMESTAMP", "SHARD_END", "", "-1", "007", "1e9", " 1", "１２"} {
		f.Add(s, uint64(0), "1", uint64(3))
	}
	f.Fuzz(func(t *testing.T, a string, asub uint64, b string, bsub uint64) {
		x, errX := Parse(a, asub)
		y, errY := Parse(b, bsub)
		if errX != nil || errY != nil {
			return
		}
		if x.Compare(x) != 0 {
			t.Fatalf("%v compares unequal to itself", x)
		}
		c := x.Compare(y)
		if c != -y.Compare(x) {
			t.Fatalf("Compare(%v, %v) = %d but Compare(%v, %v) = %d", x, y, c, y, x, y.Compare(x))
		}
		if (c == 0) != (x == y) {
			t.Fatalf("Compare(%v, %v) = %d, but they are equal: %v", x, y, c, x == y)
		}
		if !x.IsPosition() && x.String() != a+"/"+strconv.FormatUint(asub, 10) {
			t.Fatalf("String() = %q, want %q/%d", x.String(), a, asub)
		}
	})
}
