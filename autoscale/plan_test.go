package autoscale

import (
	"math/big"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// halves are the hash key ranges of a two-shard stream.
var (
	lowHalf  = [2]string{"0", "170141183460469231731687303715884105727"}
	highHalf = [2]string{"170141183460469231731687303715884105728", "340282366920938463463374607431768211455"}
)

func load(id string, rng [2]string, bytesPerSec, recordsPerSec, throttled float64, complete bool) ShardLoad {
	return ShardLoad{ShardID: id, StartingHashKey: rng[0], EndingHashKey: rng[1], BytesPerSecond: bytesPerSec,
		RecordsPerSecond: recordsPerSec, ThrottledPerSecond: throttled, Complete: complete}
}

// skewed returns n hash keys in rng of which share lie in its lowest
// tenth, the rest spread evenly.
func skewed(rng [2]string, n int, share float64, seed uint64) []string {
	start, _ := new(big.Int).SetString(rng[0], 10)
	end, _ := new(big.Int).SetString(rng[1], 10)
	width := new(big.Int).Sub(end, start)
	tenth := new(big.Int).Div(width, big.NewInt(10))
	r := rand.New(rand.NewSource(int64(seed)))
	out := make([]string, n)
	for i := range out {
		span := width
		if r.Float64() < share {
			span = tenth
		}
		off := new(big.Int).Rand(r, span)
		out[i] = off.Add(off, start).String()
	}
	return out
}

func TestPlannerDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const MiB = 1 << 20
	hotSample := skewed(lowHalf, 400, 0.8, 1)
	tests := []struct {
		name      string
		cfg       PlanConfig
		history   []Snapshot // decided on first, in order
		acted     time.Time  // Acted called with it, when set
		snap      Snapshot
		want      Action
		shard     string
		splitBy   string
		reasonHas string
	}{
		{name: "below the target: nothing",
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.6*MiB, 100, 0, true), load("b", highHalf, 0.3*MiB, 100, 0, true)}},
			want: None, reasonHas: "within its target"},
		{name: "bytes above 70%: split at the midpoint without a sample",
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.8*MiB, 100, 0, true), load("b", highHalf, 0.3*MiB, 100, 0, true)}},
			want: Split, shard: "a", splitBy: "midpoint"},
		{name: "records above 70%",
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 1000, 100, 0, true), load("b", highHalf, 1000, 750, 0, true)}},
			want: Split, shard: "b", splitBy: "midpoint"},
		{name: "throttled writes count as demand",
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.5*MiB, 500, 300, true)}},
			want: Split, shard: "a"},
		{name: "the hottest of two hot shards",
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.8*MiB, 100, 0, true), load("b", highHalf, 0.95*MiB, 100, 0, true)}},
			want: Split, shard: "b"},
		{name: "a sample: split at the traffic median",
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{withSample(load("a", lowHalf, 0.9*MiB, 100, 0, true), hotSample)}},
			want: Split, shard: "a", splitBy: "median"},
		{name: "too small a sample: midpoint",
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{withSample(load("a", lowHalf, 0.9*MiB, 100, 0, true), hotSample[:10])}},
			want: Split, shard: "a", splitBy: "midpoint"},
		{name: "incomplete metrics: never acted on",
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.99*MiB, 100, 0, false), load("b", highHalf, 0.1*MiB, 10, 0, true)}},
			want: None},
		{name: "stream not ACTIVE: one resharding at a time",
			snap: Snapshot{Time: t0, Status: "UPDATING", Shards: []ShardLoad{load("a", lowHalf, 0.99*MiB, 100, 0, true)}},
			want: None, reasonHas: "UPDATING"},
		{name: "within the cool-down",
			acted: t0.Add(-time.Minute),
			snap:  Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.99*MiB, 100, 0, true)}},
			want:  None, reasonHas: "cooling down"},
		{name: "after the cool-down",
			acted: t0.Add(-6 * time.Minute),
			snap:  Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.99*MiB, 100, 0, true)}},
			want:  Split, shard: "a"},
		{name: "at the maximum shard count",
			cfg:  PlanConfig{MaxShards: 2},
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.99*MiB, 100, 0, true), load("b", highHalf, 0.1*MiB, 100, 0, true)}},
			want: None, reasonHas: "maximum"},
		{name: "cold, but not for long enough",
			history: []Snapshot{{Time: t0.Add(-10 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}}},
			snap:    Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
			want:    None},
		{name: "cold for the merge period: merge",
			history: []Snapshot{{Time: t0.Add(-16 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}}},
			snap:    Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
			want:    Merge, shard: "a"},
		{name: "a warm spell restarts the cold period",
			history: []Snapshot{
				{Time: t0.Add(-16 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
				{Time: t0.Add(-5 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.5*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
			},
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
			want: None},
		{name: "incomplete metrics restart the cold period",
			history: []Snapshot{
				{Time: t0.Add(-16 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
				{Time: t0.Add(-5 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0, 0, 0, false)}},
			},
			snap: Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
			want: None},
		{name: "at the minimum shard count",
			cfg:     PlanConfig{MinShards: 2},
			history: []Snapshot{{Time: t0.Add(-16 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}}},
			snap:    Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
			want:    None, reasonHas: "minimum"},
		{name: "not adjacent: no merge",
			history: []Snapshot{{Time: t0.Add(-16 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", [2]string{"0", "10"}, 100, 1, 0, true), load("c", [2]string{"20", "30"}, 100, 1, 0, true)}}},
			snap:    Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", [2]string{"0", "10"}, 100, 1, 0, true), load("c", [2]string{"20", "30"}, 100, 1, 0, true)}},
			want:    None},
		{name: "merging off",
			cfg:     PlanConfig{LowUtilization: -1},
			history: []Snapshot{{Time: t0.Add(-16 * time.Minute), Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}}},
			snap:    Snapshot{Time: t0, Status: "ACTIVE", Shards: []ShardLoad{load("a", lowHalf, 0.05*MiB, 10, 0, true), load("b", highHalf, 0.05*MiB, 10, 0, true)}},
			want:    None, reasonHas: "merging is off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlanner(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.history {
				if d := p.Decide(h); d.Action != None {
					t.Fatalf("history decided %+v", d)
				}
			}
			if !tt.acted.IsZero() {
				p.Acted(tt.acted)
			}
			d := p.Decide(tt.snap)
			if d.Action != tt.want || (tt.shard != "" && d.Shard != tt.shard) || (tt.splitBy != "" && d.SplitBy != tt.splitBy) {
				t.Errorf("decision %s %s by %q (%s), want %s %s by %q", d.Action, d.Shard, d.SplitBy, d.Reason, tt.want, tt.shard, tt.splitBy)
			}
			if !strings.Contains(d.Reason, tt.reasonHas) {
				t.Errorf("reason %q does not say %q", d.Reason, tt.reasonHas)
			}
			if len(d.Shards) != len(tt.snap.Shards) {
				t.Errorf("decision lists %d shards, want %d", len(d.Shards), len(tt.snap.Shards))
			}
			if d.Action == Split {
				rng, _ := hashkey.ParseRange(tt.snap.Shards[0].StartingHashKey, tt.snap.Shards[0].EndingHashKey)
				at := hashkey.MustParse(d.SplitAt)
				if at.Cmp(rng.Start) <= 0 {
					t.Errorf("split at %s, not above the shard's start", d.SplitAt)
				}
			}
		})
	}
}

func withSample(l ShardLoad, sample []string) ShardLoad {
	l.Sample = sample
	return l
}

// The median split halves the sample; the midpoint split leaves a hot key
// range on one side.
func TestMedianSplitHalvesTraffic(t *testing.T) {
	rng, _ := hashkey.ParseRange(lowHalf[0], lowHalf[1])
	for _, share := range []float64{0.5, 0.8, 0.95} {
		sample := skewed(lowHalf, 2000, share, 7)
		at, below, ok := medianSplit(rng, sample, 50)
		if !ok {
			t.Fatal("no median split")
		}
		if below < 0.49 || below > 0.51 {
			t.Errorf("share %v: median split leaves %.3f of the sample below", share, below)
		}
		if got := shareBelow(sample, at); got != below {
			t.Errorf("share %v: reported %.3f below, counted %.3f", share, below, got)
		}
		mid := shareBelow(sample, midpointSplit(rng))
		if mid < share/2 {
			t.Errorf("share %v: midpoint split leaves only %.3f below", share, mid)
		}
	}
	// One hot key: it cannot be divided, and goes whole to the side that
	// evens the halves best.
	hot := hashkey.MustParse("1000").String()
	sample := append(skewed(lowHalf, 100, 0, 3), strings.Split(strings.Repeat(hot+",", 150), ",")[:150]...)
	at, below, ok := medianSplit(rng, sample, 50)
	if !ok || at.String() != "1001" || below != 0.6 {
		t.Errorf("hot key split at %v (%.2f below, %v), want just after the hot key, 0.60 below", at, below, ok)
	}
	if _, _, ok := medianSplit(hashkey.Range{Start: hashkey.MustParse("5"), End: hashkey.MustParse("5")}, []string{"5", "5"}, 1); ok {
		t.Error("a one-key range was split")
	}
}

func shareBelow(sample []string, at hashkey.Key) float64 {
	n := 0
	for _, s := range sample {
		if hashkey.MustParse(s).Cmp(at) < 0 {
			n++
		}
	}
	return float64(n) / float64(len(sample))
}

func TestPlanConfigValidate(t *testing.T) {
	for _, c := range []PlanConfig{
		{TargetUtilization: 1.5}, {TargetUtilization: 0.5, LowUtilization: 0.6}, {MinShards: -1},
		{MinShards: 4, MaxShards: 2}, {Cooldown: -time.Second}, {MinSample: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid", c)
		}
	}
	if err := (PlanConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}
