package kpl

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
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
