package kcl

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/metricreg"
	"github.com/kinesisgo/kinesis/internal/streamref"
)

// Enhanced fan-out facts (Kinesis API reference, SubscribeToShard): a
// subscription delivers events for at most 5 minutes; one call per second
// per consumer and shard.
const (
	// subscriptionRenewAfter is when a subscription is renewed, ahead of
	// the service ending it at 5 minutes, so that its end never waits on a
	// closing stream.
	subscriptionRenewAfter = 4*time.Minute + 50*time.Second
	// subscribeInterval is the least time between two SubscribeToShard
	// calls for one shard.
	subscribeInterval = time.Second
)

// shardReader reads one shard for its goroutine: the poller (GetRecords)
// or the subscriber (enhanced fan-out). run sends the batches and closes
// out when it returns; done acknowledges a batch the processor finished.
type shardReader interface {
	run(ctx context.Context, out chan<- fetched)
	done(seqNo uint64)
}

var (
	_ shardReader = (*poller)(nil)
	_ shardReader = (*subscriber)(nil)
)

// FanOutAPI is the Kinesis call of enhanced fan-out retrieval;
// *kinesis.Client has it.
type FanOutAPI interface {
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
}

// eventStream is one subscription's events, as the SDK's
// *kinesis.SubscribeToShardEventStream gives them.
type eventStream interface {
	Events() <-chan types.SubscribeToShardEventStream
	Close() error
	Err() error
}

// subscribeFunc opens a subscription.
type subscribeFunc func(ctx context.Context, in *kinesis.SubscribeToShardInput) (eventStream, error)

// sdkSubscribe opens subscriptions with api. Each call gets a protocol
// value of its own: the SDK's keeps the event-stream decoder's state, shared
// by every stream of a client, so that concurrent subscriptions race on it
// (aws/smithy-go issue 714).
func sdkSubscribe(api FanOutAPI) subscribeFunc {
	return func(ctx context.Context, in *kinesis.SubscribeToShardInput) (eventStream, error) {
		out, err := api.SubscribeToShard(ctx, in, func(o *kinesis.Options) { o.Protocol = awsjson.New11(schemas.Kinesis_20131202) })
		if err != nil {
			return nil, err
		}
		return out.GetStream(), nil
	}
}

// fanOutMetrics are the metrics of fan-out retrieval.
type fanOutMetrics struct {
	subscriptions   *prometheus.CounterVec // by reason: started, renewed (the service ended it, or ahead of that), resubscribed (after an error)
	subscribeErrors *prometheus.CounterVec // by error kind
}

func newFanOutMetrics(reg prometheus.Registerer) *fanOutMetrics {
	m := &fanOutMetrics{
		subscriptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_kcl_subscriptions_total",
			Help: "SubscribeToShard subscriptions opened, by reason: started (a shard's first), renewed (at the end of the previous one's lifetime), resubscribed (after an error).",
		}, []string{"reason"}),
		subscribeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_kcl_subscribe_errors_total",
			Help: "Failed SubscribeToShard calls and subscriptions ended by an error, by error kind.",
		}, []string{"kind"}),
	}
	m.subscriptions = metricreg.Register(reg, m.subscriptions)
	m.subscribeErrors = metricreg.Register(reg, m.subscribeErrors)
	return m
}

// subscriber reads one shard with enhanced fan-out, in the poller's shape:
// run sends fetched values (batches of records, then the shard's end) on a
// channel, and done acknowledges them. It subscribes from the start
// position, renews each subscription before its 5 minutes are up,
// resubscribes with backoff after errors, always from the last event's
// continuation sequence number, and treats an event with ChildShards as
// the shard's end.
type subscriber struct {
	subscribe   subscribeFunc
	consumerARN string
	shardID     string
	cfg         RetrievalConfig
	retry       backoff.Policy
	log         *zap.Logger
	met         *metrics
	fmet        *fanOutMetrics
	// shards answers whether a shard that is not found aged out, as the
	// poller does.
	shards *poller

	start startPosition
	// cont is the continuation sequence number of the last event, "" before
	// the first.
	cont          string
	stream        eventStream
	renew         *time.Timer // renews stream at subscriptionRenewAfter
	renewAfter    time.Duration
	lastSubscribe time.Time
	subscribed    bool // a subscription was opened before
	failures      int
	n             uint64

	gate *prefetchGate
}

func newSubscriber(sub subscribeFunc, api KinesisAPI, stream streamref.Ref, consumerARN, shardID string, start startPosition,
	cfg RetrievalConfig, log *zap.Logger, met *metrics, fmet *fanOutMetrics) *subscriber {
	return &subscriber{
		subscribe: sub, consumerARN: consumerARN, shardID: shardID, start: start, cfg: cfg, log: log, met: met, fmet: fmet,
		retry:      backoff.Policy{Base: cfg.BackoffBase, Max: cfg.BackoffMax},
		shards:     newPoller(api, stream, shardID, start, cfg, log, met),
		renewAfter: subscriptionRenewAfter,
		gate:       newPrefetchGate(),
	}
}

// run sends batches on out until the shard ends or ctx is done; it closes
// out when it returns. As with the poller, at most one batch waits in hand
// while the consumer processes the previous one, and none when the batch
// being processed is PrefetchBytes or larger: events are then left unread,
// and the subscription's flow control holds the rest at the service.
func (s *subscriber) run(ctx context.Context, out chan<- fetched) {
	defer s.closeStream()
	s.gate.run(ctx, out, s.next, s.cfg.PrefetchBytes)
}

// prefetchGate sends a reader's batches on a channel, one batch ahead of
// the consumer unless the batch in hand holds PrefetchBytes or more, and
// takes the consumer's acknowledgements (done).
type prefetchGate struct {
	// processed is the seqNo of the last delivery the consumer finished.
	processed atomic.Uint64
	ack       chan struct{}
}

func newPrefetchGate() *prefetchGate { return &prefetchGate{ack: make(chan struct{}, 1)} }

// run sends what next returns on out until the shard ends, the stream is
// gone, or next fails (ctx is done); it closes out when it returns.
func (g *prefetchGate) run(ctx context.Context, out chan<- fetched, next func(context.Context) (fetched, error), prefetchBytes int) {
	defer close(out)
	for {
		f, err := next(ctx)
		if err != nil {
			return // ctx done
		}
		select {
		case out <- f:
		case <-ctx.Done():
			return
		}
		if f.end || f.gone != nil {
			return
		}
		if f.bytes >= prefetchBytes {
			for g.processed.Load() < f.seqNo {
				select {
				case <-g.ack:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// done tells the gate that the consumer finished delivery seqNo.
func (g *prefetchGate) done(seqNo uint64) {
	g.processed.Store(seqNo)
	select {
	case g.ack <- struct{}{}:
	default:
	}
}

// done tells the subscriber that the consumer finished delivery seqNo.
func (s *subscriber) done(seqNo uint64) { s.gate.done(seqNo) }

// next returns the next batch with records or the shard's end. It fails
// only when ctx is done.
func (s *subscriber) next(ctx context.Context) (fetched, error) {
	for {
		if s.stream == nil {
			if err := s.open(ctx); err != nil {
				if ctx.Err() != nil {
					return fetched{}, ctx.Err()
				}
				if f, ok := s.failed(ctx, "SubscribeToShard", err); ok {
					return f, nil
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return fetched{}, ctx.Err()
		case <-s.renew.C:
			s.log.Debug("renewing the subscription", zap.String("shard", s.shardID))
			s.closeStream()
		case ev, ok := <-s.stream.Events():
			if !ok {
				err := s.stream.Err()
				s.closeStream()
				if err == nil {
					continue // the service ended it (its 5 minutes are up): renew
				}
				if ctx.Err() != nil {
					return fetched{}, ctx.Err()
				}
				if f, ok := s.failed(ctx, "subscription", err); ok {
					return f, nil
				}
				continue
			}
			e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
			if !ok {
				continue // an event type this SDK does not know
			}
			s.failures = 0
			if f, ok := s.event(e.Value); ok {
				return f, nil
			}
		}
	}
}

// event takes in one SubscribeToShardEvent and returns the batch it makes,
// if it has records or ends the shard.
func (s *subscriber) event(ev types.SubscribeToShardEvent) (fetched, bool) {
	if c := aws.ToString(ev.ContinuationSequenceNumber); c != "" {
		s.cont = c
	} else if n := len(ev.Records); n > 0 {
		s.cont = aws.ToString(ev.Records[n-1].SequenceNumber)
	}
	behind := aws.ToInt64(ev.MillisBehindLatest)
	s.met.millisBehind.WithLabelValues(s.shardID).Set(float64(behind))
	end := len(ev.ChildShards) > 0
	if len(ev.Records) == 0 && !end {
		return fetched{}, false
	}
	f := fetched{records: ev.Records, millisBehindLatest: behind, end: end, children: ev.ChildShards}
	for i := range ev.Records {
		f.bytes += len(ev.Records[i].Data)
	}
	s.n++
	f.seqNo = s.n
	return f, true
}

// open subscribes from the continuation sequence number, or the start
// position before the first event, no sooner than subscribeInterval after
// the previous call.
func (s *subscriber) open(ctx context.Context) error {
	if err := backoff.Sleep(ctx, time.Until(s.lastSubscribe.Add(subscribeInterval))); err != nil {
		return err
	}
	pos := &types.StartingPosition{Type: s.start.kind}
	switch {
	case s.cont != "":
		pos = &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(s.cont)}
	case s.start.kind == types.ShardIteratorTypeAtSequenceNumber:
		pos.SequenceNumber = aws.String(s.start.seq)
	case s.start.kind == types.ShardIteratorTypeAtTimestamp:
		pos.Timestamp = aws.Time(s.start.timestamp)
	}
	s.lastSubscribe = time.Now()
	es, err := s.subscribe(ctx, &kinesis.SubscribeToShardInput{
		ConsumerARN: aws.String(s.consumerARN), ShardId: aws.String(s.shardID), StartingPosition: pos,
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s (%s): %w", s.shardID, pos.Type, err)
	}
	reason := "started"
	switch {
	case s.failures > 0:
		reason = "resubscribed"
	case s.subscribed:
		reason = "renewed"
	}
	s.fmet.subscriptions.WithLabelValues(reason).Inc()
	s.subscribed = true
	s.stream = es
	s.renew = time.NewTimer(s.renewAfter)
	return nil
}

// failed handles a failed call or subscription: the shard's end when it
// aged out, the stream's loss when it is gone, else a backoff before the
// next subscription. ok is set with f to deliver.
func (s *subscriber) failed(ctx context.Context, what string, err error) (f fetched, ok bool) {
	s.fmet.subscribeErrors.WithLabelValues(awserr.Kind(err)).Inc()
	if f, ok := s.shards.expired(ctx, err); ok {
		s.n++
		f.seqNo = s.n
		return f, true
	}
	s.failures++
	d := max(s.retry.Delay(s.failures), s.cfg.CallInterval)
	lvl := zap.DebugLevel
	var inUse *types.ResourceInUseException
	if s.failures >= 5 && !errors.As(err, &inUse) {
		lvl = zap.WarnLevel
	}
	s.log.Log(lvl, "fan-out subscription failed; backing off", zap.String("call", what), zap.String("shard", s.shardID),
		zap.Int("failures", s.failures), zap.Duration("wait", d), zap.Error(err))
	_ = backoff.Sleep(ctx, d)
	return fetched{}, false
}

// closeStream closes the current subscription, if any.
func (s *subscriber) closeStream() {
	if s.stream == nil {
		return
	}
	_ = s.stream.Close()
	s.stream = nil
	s.renew.Stop()
}
