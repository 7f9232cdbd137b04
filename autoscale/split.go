package autoscale

import (
	"slices"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// medianSplit returns the split point (the second child's starting hash
// key) that divides the sampled hash keys inside rng most evenly, and the
// share of the sample below it; false when fewer than minSample keys lie in
// rng or no split point can divide them.
//
// The point is the median key or the key after it, whichever leaves the
// halves closer to equal: a key sampled many times (a hot partition key)
// cannot be divided, and lands on one side whole.
func medianSplit(rng hashkey.Range, sample []string, minSample int) (hashkey.Key, float64, bool) {
	keys := make([]hashkey.Key, 0, len(sample))
	for _, s := range sample {
		k, err := hashkey.Parse(s)
		if err == nil && rng.Contains(k) {
			keys = append(keys, k)
		}
	}
	n := len(keys)
	if n < minSample || n == 0 {
		return hashkey.Key{}, 0, false
	}
	slices.SortFunc(keys, hashkey.Key.Cmp)
	v := keys[n/2]
	first, _ := slices.BinarySearchFunc(keys, v, hashkey.Key.Cmp) // keys below v
	after := first
	for after < n && keys[after] == v {
		after++
	}
	half := float64(n) / 2
	type cut struct {
		at   hashkey.Key
		left int
	}
	var cuts []cut
	if v.Cmp(rng.Start) > 0 {
		cuts = append(cuts, cut{v, first}) // v goes to the second child
	}
	if v.Cmp(rng.End) < 0 {
		cuts = append(cuts, cut{next(v), after}) // v goes to the first child
	}
	if len(cuts) == 0 {
		return hashkey.Key{}, 0, false
	}
	best := cuts[0]
	for _, c := range cuts[1:] {
		if abs(float64(c.left)-half) < abs(float64(best.left)-half) {
			best = c
		}
	}
	return best.at, float64(best.left) / float64(n), true
}

// midpointSplit is the split point just above the midpoint of rng: the
// children get equal halves of the hash key range (what kinesisctl split
// does by default).
func midpointSplit(rng hashkey.Range) hashkey.Key {
	return next(hashkey.Mid(rng.Start, rng.End))
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
