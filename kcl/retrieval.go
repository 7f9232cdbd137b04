package kcl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/streamref"
)

// startPosition is where a shard's reading begins.
type startPosition struct {
	// kind is TRIM_HORIZON, LATEST, AT_TIMESTAMP or AT_SEQUENCE_NUMBER.
	kind types.ShardIteratorType
	// seq is the sequence number for AT_SEQUENCE_NUMBER.
	seq string
	// timestamp is the time for AT_TIMESTAMP.
	timestamp time.Time
}

// fetched is the result of one GetRecords call that returned records, or
// the end of the shard.
type fetched struct {
	records            []types.Record
	millisBehindLatest int64
	bytes              int
	// end is set when the shard is closed and every record has been read,
	// or when it aged out of the stream's retention period (expired).
	end      bool
	children []types.ChildShard
	// expired is set with end when the shard no longer exists while the
	// stream does: it aged out of the retention period, and its unread
	// records with it. children are then those ListShards names.
	expired bool
	// seqNo numbers the deliveries of one poller, from 1.
	seqNo uint64
	// gone is set, alone, when the stream itself no longer exists: the
	// worker cannot go on.
	gone error
}

// poller reads one shard with GetRecords: it keeps the shard iterator,
// stays within the per-shard call rate, waits between empty reads, backs off
// on throttling and errors, and renews expired iterators from the last
// record it read.
type poller struct {
	api     KinesisAPI
	stream  streamref.Ref
	shardID string
	cfg     RetrievalConfig
	retry   backoff.Policy
	log     *zap.Logger
	met     *metrics

	start    startPosition
	iterator *string
	// lastSeq is the sequence number of the last record read, "" before
	// the first.
	lastSeq  string
	lastCall time.Time
	failures int
	n        uint64

	gate *prefetchGate // bounds the bytes held when prefetching
}

func newPoller(api KinesisAPI, stream streamref.Ref, shardID string, start startPosition, cfg RetrievalConfig, log *zap.Logger, met *metrics) *poller {
	return &poller{
		api: api, stream: stream, shardID: shardID, start: start, cfg: cfg, log: log, met: met,
		retry: backoff.Policy{Base: cfg.BackoffBase, Max: cfg.BackoffMax},
		gate:  newPrefetchGate(),
	}
}

// run fetches batches ahead of the consumer and sends them on out until the
// shard ends or ctx is done; it closes out when it returns. At most one
// batch waits in hand while the consumer processes the previous one, and
// none when the batch being processed is PrefetchBytes or larger.
func (p *poller) run(ctx context.Context, out chan<- fetched) {
	p.gate.run(ctx, out, p.next, p.cfg.PrefetchBytes)
}

// done tells the poller that the consumer finished delivery seqNo.
func (p *poller) done(seqNo uint64) { p.gate.done(seqNo) }

// next returns the next non-empty batch of records or the end of the shard.
// It fails only when ctx is done.
func (p *poller) next(ctx context.Context) (fetched, error) {
	for {
		if p.iterator == nil {
			if err := p.getIterator(ctx); err != nil {
				if ctx.Err() != nil {
					return fetched{}, ctx.Err()
				}
				if f, ok := p.expired(ctx, err); ok {
					return f, nil
				}
				if err := p.backoff(ctx, "GetShardIterator", err); err != nil {
					return fetched{}, err
				}
				continue
			}
		}
		if err := backoff.Sleep(ctx, time.Until(p.lastCall.Add(p.cfg.CallInterval))); err != nil {
			return fetched{}, err
		}
		p.lastCall = time.Now()
		out, err := p.api.GetRecords(ctx, &kinesis.GetRecordsInput{
			ShardIterator: p.iterator,
			Limit:         aws.Int32(int32(p.cfg.MaxRecords)),
			StreamARN:     p.stream.ARN(),
		})
		if err != nil {
			if ctx.Err() != nil {
				return fetched{}, ctx.Err()
			}
			p.met.getRecordsErrors.WithLabelValues(awserr.Kind(err)).Inc()
			if f, ok := p.expired(ctx, err); ok {
				return f, nil
			}
			// Before the first record of a LATEST start, a new iterator
			// would skip what was written since: the iterator is kept
			// until Kinesis reports it expired.
			keep := p.lastSeq == "" && p.start.kind == types.ShardIteratorTypeLatest
			var expired *types.ExpiredIteratorException
			if errors.As(err, &expired) {
				// Renew from the last record read (or the start).
				if keep {
					p.log.Warn("shard iterator expired before the first record; renewing at LATEST, records written meanwhile are not read",
						zap.String("shard", p.shardID))
				} else {
					p.log.Info("shard iterator expired; renewing", zap.String("shard", p.shardID))
				}
				p.iterator = nil
				continue
			}
			// An error that repeating the call does not cure is about the
			// iterator (or the stream): a fresh one from the last record
			// read is the best recovery. Transient errors keep it.
			if !keep && awserr.IsFatal(err) {
				p.iterator = nil
			}
			if err := p.backoff(ctx, "GetRecords", err); err != nil {
				return fetched{}, err
			}
			continue
		}
		p.failures = 0
		p.iterator = out.NextShardIterator
		var behind int64
		if out.MillisBehindLatest != nil {
			behind = *out.MillisBehindLatest
		}
		p.met.millisBehind.WithLabelValues(p.shardID).Set(float64(behind))
		end := out.NextShardIterator == nil
		if len(out.Records) == 0 && !end {
			if err := backoff.Sleep(ctx, p.cfg.IdleWait); err != nil {
				return fetched{}, err
			}
			continue
		}
		f := fetched{records: out.Records, millisBehindLatest: behind, end: end, children: out.ChildShards}
		for i := range out.Records {
			f.bytes += len(out.Records[i].Data)
		}
		if n := len(out.Records); n > 0 {
			p.lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
		}
		p.n++
		f.seqNo = p.n
		return f, nil
	}
}

func (p *poller) getIterator(ctx context.Context) error {
	in := &kinesis.GetShardIteratorInput{
		ShardId:    aws.String(p.shardID),
		StreamName: p.stream.Name(),
		StreamARN:  p.stream.ARN(),
	}
	switch {
	case p.lastSeq != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(p.lastSeq)
	case p.start.kind == types.ShardIteratorTypeAtSequenceNumber:
		in.ShardIteratorType = p.start.kind
		in.StartingSequenceNumber = aws.String(p.start.seq)
	case p.start.kind == types.ShardIteratorTypeAtTimestamp:
		in.ShardIteratorType = p.start.kind
		in.Timestamp = aws.Time(p.start.timestamp)
	default:
		in.ShardIteratorType = p.start.kind
	}
	out, err := p.api.GetShardIterator(ctx, in)
	if err != nil {
		p.met.getRecordsErrors.WithLabelValues(awserr.Kind(err)).Inc()
		return fmt.Errorf("get shard iterator for %s (%s): %w", p.shardID, in.ShardIteratorType, err)
	}
	if out.ShardIterator == nil {
		return fmt.Errorf("get shard iterator for %s: no iterator returned", p.shardID)
	}
	p.iterator = out.ShardIterator
	return nil
}

// backoff waits after the failures-th consecutive failure: full jitter
// from BackoffBase up to BackoffMax, never less than the call interval.
func (p *poller) backoff(ctx context.Context, call string, err error) error {
	p.failures++
	d := max(p.retry.Delay(p.failures), p.cfg.CallInterval)
	lvl := zap.DebugLevel
	if p.failures >= 5 {
		lvl = zap.WarnLevel
	}
	p.log.Log(lvl, "kinesis call failed; backing off", zap.String("call", call), zap.String("shard", p.shardID),
		zap.Int("failures", p.failures), zap.Duration("wait", d), zap.Error(err))
	return backoff.Sleep(ctx, d)
}

// expired tells, after a failed read, whether the shard aged out of the
// stream's retention period: the error is a ResourceNotFoundException, and
// ListShards answers for the stream without the shard. Kinesis answers
// ResourceNotFoundException for a missing stream too; a stream that cannot
// be listed is left to the usual backoff. f is the end of the shard, with
// the children ListShards names (shards whose ParentShardId or
// AdjacentParentShardId is this one).
func (p *poller) expired(ctx context.Context, err error) (f fetched, ok bool) {
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return fetched{}, false
	}
	shards, lerr := p.listShards(ctx)
	if errors.As(lerr, &nf) {
		// The stream is gone, not only the shard.
		p.n++
		return fetched{gone: fmt.Errorf("kcl: stream %s: %w", p.stream, lerr), seqNo: p.n}, true
	}
	if lerr != nil {
		p.log.Debug("listing the shards after ResourceNotFoundException failed", zap.String("shard", p.shardID), zap.Error(lerr))
		return fetched{}, false
	}
	var children []types.ChildShard
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		if id == p.shardID {
			return fetched{}, false // still there: not aged out
		}
		var parents []string
		for _, parent := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if parent != nil {
				parents = append(parents, *parent)
			}
		}
		for _, parent := range parents {
			if parent == p.shardID {
				children = append(children, types.ChildShard{ShardId: sh.ShardId, ParentShards: parents, HashKeyRange: sh.HashKeyRange})
				break
			}
		}
	}
	p.n++
	return fetched{end: true, expired: true, children: children, seqNo: p.n}, true
}

// listShards lists every shard of the stream Kinesis still lists (open
// ones, and closed ones within the retention period), following NextToken.
func (p *poller) listShards(ctx context.Context) ([]types.Shard, error) {
	return listShards(ctx, p.api, p.stream)
}

// listShards lists every shard of stream Kinesis still lists (open ones,
// and closed ones within the retention period), following NextToken.
func listShards(ctx context.Context, api KinesisAPI, stream streamref.Ref) ([]types.Shard, error) {
	in := &kinesis.ListShardsInput{StreamName: stream.Name(), StreamARN: stream.ARN()}
	var all []types.Shard
	for {
		out, err := api.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			return all, nil
		}
		// With NextToken, the stream must not be named.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}
