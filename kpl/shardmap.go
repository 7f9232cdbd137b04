package kpl

import (
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// shardMap is the stream's open shards, sorted by starting hash key.
type shardMap struct {
	version uint64
	shards  []*shard
}

// lookup returns the shard whose range holds k (or, should the ranges have
// a gap, the nearest one below it: Kinesis routes by hash key anyway, and
// the mismatch triggers a refresh).
func (m *shardMap) lookup(k hashkey.Key) *shard {
	i := sort.Search(len(m.shards), func(i int) bool { return m.shards[i].rng.Start.Cmp(k) > 0 }) - 1
	if i < 0 {
		i = 0
	}
	return m.shards[i]
}

// install makes a new shard map current. Shards that stay keep their
// queues and rate limits; the records of shards that went away, and those
// put before the first map, are routed by the new map.
func (p *Producer) install(list []types.Shard) {
	old := p.shards.Load()
	byID := map[string]*shard{}
	if old != nil {
		for _, s := range old.shards {
			byID[s.id] = s
		}
	}
	m := &shardMap{version: 1}
	if old != nil {
		m.version = old.version + 1
	}
	keep := map[*shard]bool{}
	rate := float64(p.cfg.RateLimit) / 100
	for _, sh := range list {
		if sh.HashKeyRange == nil {
			continue
		}
		rng, err := hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
		if err != nil {
			p.log.Warn("shard with a bad hash key range ignored", zap.String("shard", aws.ToString(sh.ShardId)), zap.Error(err))
			continue
		}
		s := byID[aws.ToString(sh.ShardId)]
		if s == nil || s.rng != rng {
			s = &shard{id: aws.ToString(sh.ShardId), rng: rng, batches: &p.batches, keepBatch: p.keepBatch}
			s.bytes.rate = rate * ShardBytesPerSecond
			s.records.rate = rate * ShardRecordsPerSecond
			s.rateFactor = 1
		}
		keep[s] = true
		m.shards = append(m.shards, s)
	}
	if len(m.shards) == 0 {
		p.log.Warn("no usable shards listed; keeping the shard map")
		return
	}
	slices.SortFunc(m.shards, func(a, b *shard) int { return a.rng.Start.Cmp(b.rng.Start) })
	if old != nil && sameShards(old, m) {
		return
	}

	p.setDrainBound(len(m.shards))
	p.mu.Lock()
	p.shards.Store(m)
	p.inflightPrev += p.inflightCur
	p.inflightCur = 0
	// Until the old shards' records are queued on the new ones, count the
	// move as a request in flight under the old map, so that with
	// PreserveOrder no newer record overtakes them.
	p.inflightPrev++
	unrouted := p.unrouted
	p.unrouted = nil
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflightPrev--
		p.mu.Unlock()
		p.signal()
	}()

	var moved []userRec
	if old != nil {
		for _, s := range old.shards {
			if keep[s] {
				continue
			}
			s.mu.Lock()
			s.removed = true
			moved = s.takeAllLocked(moved)
			s.mu.Unlock()
		}
	}
	p.log.Info("shard map loaded", zap.Int("shards", len(m.shards)), zap.Uint64("version", m.version), zap.Int("rerouted", len(moved)+len(unrouted)))
	p.metrics.shardMapRefreshes.Inc()
	p.route(append(unrouted, moved...))
	p.signal()
}

func sameShards(a, b *shardMap) bool {
	return slices.EqualFunc(a.shards, b.shards, func(x, y *shard) bool { return x == y })
}
