package autoscale

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// Kinesis's write limits per shard (AWS Kinesis Data Streams quotas): 1 MiB
// and 1,000 records per second.
const (
	DefaultShardBytesPerSecond   = 1 << 20
	DefaultShardRecordsPerSecond = 1000
)

// Defaults of PlanConfig.
const (
	DefaultTargetUtilization = 0.70
	DefaultLowUtilization    = 0.20
	DefaultCooldown          = 5 * time.Minute
	DefaultMergeAfter        = 15 * time.Minute
	DefaultMinSample         = 50
)

// PlanConfig sets when the planner splits and merges. The zero value is
// usable: every field documents its default.
type PlanConfig struct {
	// TargetUtilization is the share of a shard's write limit above which
	// it is split. Default 0.70.
	TargetUtilization float64
	// LowUtilization is the share below which two adjacent shards are
	// merged, once both stayed below it for MergeAfter and their sum is
	// below TargetUtilization. Default 0.20. Negative: never merge.
	LowUtilization float64
	// ShardBytesPerSecond and ShardRecordsPerSecond are a shard's write
	// limits, against which utilisation is measured. Defaults 1 MiB and
	// 1,000 (Kinesis's).
	ShardBytesPerSecond   float64
	ShardRecordsPerSecond float64
	// MinShards and MaxShards bound the open shards: no merge below
	// MinShards, no split at MaxShards. Defaults 1 and 0, no maximum (the
	// account's shard quota still applies).
	MinShards int
	MaxShards int
	// Cooldown is the least time between two actions, so that the metrics
	// of the new shards are seen before the next. Default 5 minutes.
	Cooldown time.Duration
	// MergeAfter is how long both shards of a merge must have stayed below
	// LowUtilization. Default 15 minutes.
	MergeAfter time.Duration
	// MinSample is the fewest sampled hash keys inside a shard's range for
	// a split at the traffic median; with fewer the shard is split at the
	// midpoint of its range. Default 50.
	MinSample int
}

func (c PlanConfig) withDefaults() PlanConfig {
	if c.TargetUtilization == 0 {
		c.TargetUtilization = DefaultTargetUtilization
	}
	if c.LowUtilization == 0 {
		c.LowUtilization = DefaultLowUtilization
	}
	if c.ShardBytesPerSecond == 0 {
		c.ShardBytesPerSecond = DefaultShardBytesPerSecond
	}
	if c.ShardRecordsPerSecond == 0 {
		c.ShardRecordsPerSecond = DefaultShardRecordsPerSecond
	}
	if c.MinShards == 0 {
		c.MinShards = 1
	}
	if c.Cooldown == 0 {
		c.Cooldown = DefaultCooldown
	}
	if c.MergeAfter == 0 {
		c.MergeAfter = DefaultMergeAfter
	}
	if c.MinSample == 0 {
		c.MinSample = DefaultMinSample
	}
	return c
}

// Validate reports the first invalid field of c.
func (c PlanConfig) Validate() error {
	d := c.withDefaults()
	switch {
	case d.TargetUtilization < 0 || d.TargetUtilization > 1:
		return fmt.Errorf("autoscale: TargetUtilization %v is not in (0, 1]", c.TargetUtilization)
	case d.LowUtilization >= d.TargetUtilization:
		return fmt.Errorf("autoscale: LowUtilization %v is not below TargetUtilization %v", d.LowUtilization, d.TargetUtilization)
	case d.ShardBytesPerSecond < 0 || d.ShardRecordsPerSecond < 0:
		return errors.New("autoscale: shard limits must be positive")
	case d.MinShards < 1:
		return fmt.Errorf("autoscale: MinShards %d is below 1", c.MinShards)
	case d.MaxShards != 0 && d.MaxShards < d.MinShards:
		return fmt.Errorf("autoscale: MaxShards %d is below MinShards %d", c.MaxShards, d.MinShards)
	case d.Cooldown < 0 || d.MergeAfter < 0:
		return errors.New("autoscale: Cooldown and MergeAfter must not be negative")
	case d.MinSample < 1:
		return fmt.Errorf("autoscale: MinSample %d is below 1", c.MinSample)
	}
	return nil
}

// ShardLoad is what the planner knows of one open shard: its hash key range
// and the write traffic it received over the evaluation window.
type ShardLoad struct {
	ShardID string `json:"shardId"`
	// StartingHashKey and EndingHashKey are its range, in decimal.
	StartingHashKey string `json:"startingHashKey"`
	EndingHashKey   string `json:"endingHashKey"`
	// BytesPerSecond and RecordsPerSecond are the writes it accepted
	// (CloudWatch IncomingBytes and IncomingRecords over the window, per
	// second).
	BytesPerSecond   float64 `json:"bytesPerSecond"`
	RecordsPerSecond float64 `json:"recordsPerSecond"`
	// ThrottledPerSecond is the writes it refused for throughput
	// (WriteProvisionedThroughputExceeded, records per second): demand
	// above its limit, which accepted writes do not show.
	ThrottledPerSecond float64 `json:"throttledPerSecond"`
	// Complete is set when every period of the window has its metrics. A
	// shard with incomplete metrics (new, or metrics delayed) is never
	// acted on.
	Complete bool `json:"complete"`
	// Sample holds hash keys (decimal) of records it received recently,
	// from which a split point that halves its traffic is found. Nil when
	// no sample was taken.
	Sample []string `json:"-"`
	// SampleSize is len(Sample), for the decision log.
	SampleSize int `json:"sampleSize"`
	// Source says where the rates come from: SourceCloudWatch, or
	// SourceLeases (a kcl application's measured read rate). Empty when
	// filled in by the caller.
	Source string `json:"source,omitempty"`
}

// Sources of ShardLoad.
const (
	SourceCloudWatch = "cloudwatch"
	SourceLeases     = "leases"
)

// Utilization is a shard's write demand as a share of its limit: the
// larger of bytes and records, each counting the refused writes too
// (refused bytes estimated at the accepted records' mean size).
func (l ShardLoad) utilization(c PlanConfig) float64 {
	records := l.RecordsPerSecond + l.ThrottledPerSecond
	bytes := l.BytesPerSecond
	if l.RecordsPerSecond > 0 {
		bytes *= records / l.RecordsPerSecond
	}
	return math.Max(bytes/c.ShardBytesPerSecond, records/c.ShardRecordsPerSecond)
}

// Snapshot is the stream as the planner sees it at one evaluation.
type Snapshot struct {
	// Time is when the window ends.
	Time time.Time
	// Status is the stream's status; the planner acts only on an ACTIVE
	// stream (Kinesis allows one resharding operation at a time).
	Status string
	// Shards are the open shards.
	Shards []ShardLoad
}

// Action is what a decision does.
type Action string

// Actions.
const (
	None  Action = "none"
	Split Action = "split"
	Merge Action = "merge"
)

// Decision is the planner's answer to one snapshot, with its inputs.
type Decision struct {
	Action Action `json:"action"`
	// Shard is the shard to split, or the first (lower) shard of a merge.
	Shard string `json:"shard,omitempty"`
	// Adjacent is the second shard of a merge.
	Adjacent string `json:"adjacent,omitempty"`
	// SplitAt is the NewStartingHashKey of a split: the second child
	// starts at it.
	SplitAt string `json:"splitAt,omitempty"`
	// SplitBy is "median" (the sample's traffic median) or "midpoint" (of
	// the range: no usable sample).
	SplitBy string `json:"splitBy,omitempty"`
	// SampleBelow is the share of the sample below SplitAt, the first
	// child's expected share of the traffic.
	SampleBelow float64 `json:"sampleBelow,omitempty"`
	// Reason says why, in words.
	Reason string `json:"reason"`
	// Shards is every open shard's utilisation, as decided on.
	Shards []ShardUtilization `json:"shards"`
}

// ShardUtilization is one shard's inputs to a decision.
type ShardUtilization struct {
	ShardLoad
	Utilization float64 `json:"utilization"`
	// LowSince is when the shard's utilisation went below LowUtilization,
	// if it is below.
	LowSince *time.Time `json:"lowSince,omitempty"`
}

// Planner decides, one snapshot at a time, whether to split or merge. It
// remembers when it last acted and how long each shard has been cold. It
// is not safe for concurrent use.
type Planner struct {
	cfg        PlanConfig
	lastAction time.Time
	lowSince   map[string]time.Time
}

// NewPlanner checks cfg and returns a planner.
func NewPlanner(cfg PlanConfig) (*Planner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Planner{cfg: cfg.withDefaults(), lowSince: map[string]time.Time{}}, nil
}

// Acted records that an action was taken at t: the next one waits for the
// cool-down.
func (p *Planner) Acted(t time.Time) { p.lastAction = t }

type shard struct {
	load ShardLoad
	rng  hashkey.Range
	util float64
}

// Decide returns what to do about the stream in s. It does not record the
// action: call Acted once it is taken.
func (p *Planner) Decide(s Snapshot) Decision {
	c := p.cfg
	shards := make([]shard, 0, len(s.Shards))
	d := Decision{Action: None, Shards: make([]ShardUtilization, 0, len(s.Shards))}
	open := map[string]bool{}
	for _, l := range s.Shards {
		open[l.ShardID] = true
		rng, err := hashkey.ParseRange(l.StartingHashKey, l.EndingHashKey)
		u := ShardUtilization{ShardLoad: l, Utilization: l.utilization(c)}
		u.SampleSize = len(l.Sample)
		switch {
		case err != nil || !l.Complete:
			delete(p.lowSince, l.ShardID) // a cold spell must be seen whole
		case u.Utilization < c.LowUtilization:
			if _, ok := p.lowSince[l.ShardID]; !ok {
				p.lowSince[l.ShardID] = s.Time
			}
			t := p.lowSince[l.ShardID]
			u.LowSince = &t
		default:
			delete(p.lowSince, l.ShardID)
		}
		d.Shards = append(d.Shards, u)
		if err == nil {
			shards = append(shards, shard{load: l, rng: rng, util: u.Utilization})
		}
	}
	for id := range p.lowSince {
		if !open[id] {
			delete(p.lowSince, id)
		}
	}
	slices.SortFunc(shards, func(a, b shard) int { return a.rng.Start.Cmp(b.rng.Start) })

	switch {
	case s.Status != "ACTIVE":
		d.Reason = fmt.Sprintf("stream is %s: one resharding operation at a time", s.Status)
		return d
	case !p.lastAction.IsZero() && s.Time.Sub(p.lastAction) < c.Cooldown:
		d.Reason = fmt.Sprintf("cooling down: last action %s ago, cool-down %s", s.Time.Sub(p.lastAction).Round(time.Second), c.Cooldown)
		return d
	}

	// Split the hottest shard above the target.
	hot := -1
	for i, sh := range shards {
		if sh.load.Complete && sh.util > c.TargetUtilization && sh.rng.Start.Cmp(sh.rng.End) < 0 && (hot < 0 || sh.util > shards[hot].util) {
			hot = i
		}
	}
	if hot >= 0 {
		sh := shards[hot]
		if c.MaxShards > 0 && len(s.Shards) >= c.MaxShards {
			d.Reason = fmt.Sprintf("shard %s is at %.0f%% of its limit, above the target %.0f%%, but the stream has %d shards, the maximum",
				sh.load.ShardID, 100*sh.util, 100*c.TargetUtilization, len(s.Shards))
			return d
		}
		at, below, ok := medianSplit(sh.rng, sh.load.Sample, c.MinSample)
		d.Action, d.Shard, d.SplitBy = Split, sh.load.ShardID, "median"
		if !ok {
			at, below, d.SplitBy = midpointSplit(sh.rng), 0, "midpoint"
		}
		d.SplitAt, d.SampleBelow = at.String(), below
		d.Reason = fmt.Sprintf("shard %s is at %.0f%% of its limit, above the target %.0f%%: split at the %s", sh.load.ShardID,
			100*sh.util, 100*c.TargetUtilization, map[string]string{"median": "traffic median of its sample", "midpoint": "midpoint of its range (no usable sample)"}[d.SplitBy])
		return d
	}

	// Merge the coldest adjacent pair that has been cold long enough.
	if c.LowUtilization < 0 {
		d.Reason = "no shard above the target; merging is off"
		return d
	}
	best := -1
	for i := 0; i+1 < len(shards); i++ {
		a, b := shards[i], shards[i+1]
		if !adjacent(a.rng, b.rng) || !p.coldFor(a.load.ShardID, s.Time) || !p.coldFor(b.load.ShardID, s.Time) {
			continue
		}
		if a.util+b.util >= c.TargetUtilization {
			continue
		}
		if best < 0 || a.util+b.util < shards[best].util+shards[best+1].util {
			best = i
		}
	}
	if best < 0 {
		d.Reason = "every shard within its target"
		return d
	}
	if len(s.Shards) <= c.MinShards {
		d.Reason = fmt.Sprintf("shards %s and %s are cold, but the stream has %d shards, the minimum",
			shards[best].load.ShardID, shards[best+1].load.ShardID, len(s.Shards))
		return d
	}
	a, b := shards[best], shards[best+1]
	d.Action, d.Shard, d.Adjacent = Merge, a.load.ShardID, b.load.ShardID
	d.Reason = fmt.Sprintf("shards %s and %s have been below %.0f%% of their limit for %s (at %.0f%% and %.0f%%): merge", a.load.ShardID,
		b.load.ShardID, 100*c.LowUtilization, c.MergeAfter, 100*a.util, 100*b.util)
	return d
}

// coldFor reports whether the shard has been below the low-water mark for
// MergeAfter at t.
func (p *Planner) coldFor(id string, t time.Time) bool {
	since, ok := p.lowSince[id]
	return ok && t.Sub(since) >= p.cfg.MergeAfter
}

// adjacent reports whether b's range starts right after a's.
func adjacent(a, b hashkey.Range) bool {
	return a.End.Cmp(hashkey.Max) < 0 && next(a.End).Cmp(b.Start) == 0
}

func next(k hashkey.Key) hashkey.Key {
	if k.Lo == ^uint64(0) {
		return hashkey.Key{Hi: k.Hi + 1}
	}
	return hashkey.Key{Hi: k.Hi, Lo: k.Lo + 1}
}
