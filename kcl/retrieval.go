package kcl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
)

// streamRef names a stream by name or by ARN, as the Kinesis API accepts.
type streamRef struct {
	name, arn string
}

func parseStream(s string) streamRef {
	if strings.HasPrefix(s, "arn:") {
		return streamRef{arn: s}
	}
	return streamRef{name: s}
}

func (r streamRef) nameOrNil() *string {
	if r.name == "" {
		return nil
	}
	return aws.String(r.name)
}

func (r streamRef) arnOrNil() *string {
	if r.arn == "" {
		return nil
	}
	return aws.String(r.arn)
}

func (r streamRef) String() string {
	if r.arn != "" {
		return r.arn
	}
	return r.name
}

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
	// end is set when the shard is closed and every record has been read.
	end      bool
	children []types.ChildShard
	// seqNo numbers the deliveries of one poller, from 1.
	seqNo uint64
}

// poller reads one shard with GetRecords: it keeps the shard iterator,
// stays within the per-shard call rate, waits between empty reads, backs off
// on throttling and errors, and renews expired iterators from the last
// record it read.
type poller struct {
	api     KinesisAPI
	stream  streamRef
	shardID string
	cfg     RetrievalConfig
	log     *zap.Logger
	met     *metrics
	sleep   func(ctx context.Context, d time.Duration) error

	start    startPosition
	iterator *string
	// lastSeq is the sequence number of the last record read, "" before
	// the first.
	lastSeq  string
	lastCall time.Time
	failures int
	n        uint64

	// processed is the seqNo of the last delivery the consumer finished,
	// used to bound the bytes held when prefetching.
	processed atomic.Uint64
	ack       chan struct{}
}

func newPoller(api KinesisAPI, stream streamRef, shardID string, start startPosition, cfg RetrievalConfig, log *zap.Logger, met *metrics) *poller {
	return &poller{
		api: api, stream: stream, shardID: shardID, start: start, cfg: cfg, log: log, met: met,
		sleep: sleepCtx, ack: make(chan struct{}, 1),
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// run fetches batches ahead of the consumer and sends them on out until the
// shard ends or ctx is done; it closes out when it returns. At most one
// batch waits in hand while the consumer processes the previous one, and
// none when the batch being processed is PrefetchBytes or larger.
func (p *poller) run(ctx context.Context, out chan<- fetched) {
	defer close(out)
	for {
		f, err := p.next(ctx)
		if err != nil {
			return // ctx done
		}
		select {
		case out <- f:
		case <-ctx.Done():
			return
		}
		if f.end {
			return
		}
		if f.bytes >= p.cfg.PrefetchBytes {
			for p.processed.Load() < f.seqNo {
				select {
				case <-p.ack:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// done tells the poller that the consumer finished delivery seqNo.
func (p *poller) done(seqNo uint64) {
	p.processed.Store(seqNo)
	select {
	case p.ack <- struct{}{}:
	default:
	}
}

// next returns the next non-empty batch of records or the end of the shard.
// It fails only when ctx is done.
func (p *poller) next(ctx context.Context) (fetched, error) {
	for {
		if p.iterator == nil {
			if err := p.getIterator(ctx); err != nil {
				if ctx.Err() != nil {
					return fetched{}, ctx.Err()
				}
				if err := p.backoff(ctx, "GetShardIterator", err); err != nil {
					return fetched{}, err
				}
				continue
			}
		}
		if err := p.sleep(ctx, time.Until(p.lastCall.Add(p.cfg.CallInterval))); err != nil {
			return fetched{}, err
		}
		p.lastCall = time.Now()
		out, err := p.api.GetRecords(ctx, &kinesis.GetRecordsInput{
			ShardIterator: p.iterator,
			Limit:         aws.Int32(int32(p.cfg.MaxRecords)),
			StreamARN:     p.stream.arnOrNil(),
		})
		if err != nil {
			if ctx.Err() != nil {
				return fetched{}, ctx.Err()
			}
			kind := errorKind(err)
			p.met.getRecordsErrors.WithLabelValues(kind).Inc()
			var expired *types.ExpiredIteratorException
			if errors.As(err, &expired) {
				// Renew from the last record read (or the start).
				if p.lastSeq == "" && p.start.kind == types.ShardIteratorTypeLatest {
					p.log.Warn("shard iterator expired before the first record; renewing at LATEST, records written meanwhile are not read",
						zap.String("shard", p.shardID))
				} else {
					p.log.Info("shard iterator expired; renewing", zap.String("shard", p.shardID))
				}
				p.iterator = nil
				continue
			}
			// A fresh iterator from the last record read is the best
			// recovery for errors about the iterator itself (and for
			// unknown errors that repeat); but before the first record of
			// a LATEST start, a fresh iterator would skip what was written
			// since, so the iterator is kept until it expires.
			keep := p.lastSeq == "" && p.start.kind == types.ShardIteratorTypeLatest
			if !keep && (!retryableKind(kind) || (kind == "other" && p.failures >= 2)) {
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
			if err := p.sleep(ctx, p.cfg.IdleWait); err != nil {
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
		StreamName: p.stream.nameOrNil(),
		StreamARN:  p.stream.arnOrNil(),
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
		p.met.getRecordsErrors.WithLabelValues(errorKind(err)).Inc()
		return fmt.Errorf("get shard iterator for %s (%s): %w", p.shardID, in.ShardIteratorType, err)
	}
	if out.ShardIterator == nil {
		return fmt.Errorf("get shard iterator for %s: no iterator returned", p.shardID)
	}
	p.iterator = out.ShardIterator
	return nil
}

// backoff waits after the failures-th consecutive failure: exponential from
// BackoffBase up to BackoffMax, with full jitter, never less than the call
// interval.
func (p *poller) backoff(ctx context.Context, call string, err error) error {
	p.failures++
	d := backoffDelay(p.failures, p.cfg.BackoffBase, p.cfg.BackoffMax)
	if d < p.cfg.CallInterval {
		d = p.cfg.CallInterval
	}
	lvl := zap.DebugLevel
	if p.failures >= 5 {
		lvl = zap.WarnLevel
	}
	p.log.Log(lvl, "kinesis call failed; backing off", zap.String("call", call), zap.String("shard", p.shardID),
		zap.Int("failures", p.failures), zap.Duration("wait", d), zap.Error(err))
	return p.sleep(ctx, d)
}

// backoffDelay is a random wait in [0, min(max, base·2^(attempt-1))] with a
// floor of base/2, so that a failure never retries at once.
func backoffDelay(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// errorKind names an error for the GetRecords error metric: the AWS error
// code for the codes the worker knows, "other" for the rest.
func errorKind(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); code {
		case "ProvisionedThroughputExceededException", "ExpiredIteratorException", "KMSThrottlingException",
			"InternalFailure", "ServiceUnavailable", "ResourceNotFoundException", "InvalidArgumentException",
			"AccessDeniedException", "LimitExceededException", "ThrottlingException", "ResourceInUseException":
			return code
		}
		return "other"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "network"
}

// retryableKind tells whether an error kind is transient for the same
// iterator (throttling, service faults, network); other errors get a fresh
// iterator.
func retryableKind(kind string) bool {
	switch kind {
	case "ProvisionedThroughputExceededException", "KMSThrottlingException", "InternalFailure",
		"ServiceUnavailable", "LimitExceededException", "ThrottlingException", "timeout", "network", "other":
		return true
	}
	return false
}
