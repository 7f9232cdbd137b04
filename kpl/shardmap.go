package kpl

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// maxRefreshBackoff caps the delay before a failed ListShards is retried.
// Refreshes are at least Config.minRefreshInterval (1 s) apart.
const maxRefreshBackoff = 30 * time.Second

// requestRefresh asks the refresher to reload the shard map.
func (p *Producer) requestRefresh() {
	select {
	case p.refresh <- struct{}{}:
	default:
	}
}

// refreshLoop loads the shard map at start and again whenever asked,
// retrying failures with backoff, until Close.
func (p *Producer) refreshLoop() {
	defer p.wg.Done()
	ctx := p.runCtx
	failures := 0
	var last time.Time
	for {
		shards, err := p.listShards(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			delay := backoff.Policy{Base: p.cfg.MinBackoff, Max: maxRefreshBackoff}.Ceiling(failures)
			p.log.Warn("listing shards failed; retrying", zap.Error(err), zap.Duration("after", delay))
			p.metrics.shardMapErrors.Inc()
			p.mapFailed(err)
			if backoff.Sleep(ctx, delay) != nil {
				return
			}
			continue
		}
		failures = 0
		last = time.Now()
		p.mu.Lock()
		p.mapErr = nil
		p.mu.Unlock()
		p.install(shards)
		select {
		case <-p.stop:
			return
		case <-p.refresh:
		}
		if backoff.Sleep(ctx, p.cfg.minRefreshInterval-time.Since(last)) != nil {
			return
		}
	}
}

// mapFailed records why the shard map could not be loaded. Records waiting
// for a first map fail at once when retrying cannot help (no such stream,
// access denied); otherwise they wait, and expire with this error as cause.
func (p *Producer) mapFailed(err error) {
	var failed []userRec
	p.mu.Lock()
	p.mapErr = err
	if p.shards.Load() == nil && awserr.IsFatal(err) {
		failed, p.unrouted = p.unrouted, nil
	}
	p.mu.Unlock()
	p.fail(failed, err, false)
}

// listShards lists the stream's open shards (ShardFilter AT_LATEST), all
// pages.
func (p *Producer) listShards(ctx context.Context) ([]types.Shard, error) {
	in := &kinesis.ListShardsInput{
		StreamName:  p.stream.Name(),
		StreamARN:   p.stream.ARN(),
		ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest},
	}
	var shards []types.Shard
	for {
		callCtx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		out, err := p.client.ListShards(callCtx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("kpl: ListShards %s: %w", p.stream, err)
		}
		shards = append(shards, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		// With NextToken, the stream and filter must be left out.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("kpl: ListShards %s: no open shards", p.stream)
	}
	return shards, nil
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
			s = &shard{id: aws.ToString(sh.ShardId), rng: rng}
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
			s.dropChunkLocked()
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
