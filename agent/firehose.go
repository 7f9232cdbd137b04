package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/metricreg"
)

// Firehose's PutRecordBatch limits (Amazon Data Firehose API reference):
// at most 500 records and 4 MiB per call, records of at most 1,000 KiB
// before base64 encoding. They cannot be raised.
const (
	FirehoseMaxBatchRecords = 500
	FirehoseMaxBatchBytes   = 4 << 20
	FirehoseMaxRecordBytes  = 1000 << 10
)

// ErrRecordExpired is the error a FirehoseSink reports for a record it
// could not deliver within its RecordTTL, retries included; it wraps the
// last failure. The agent puts such a record again later.
var ErrRecordExpired = errors.New("agent: record not delivered within its TTL")

// ErrSinkClosed is the error for records still undelivered when a sink's
// Close returns, and for Put after Close.
var ErrSinkClosed = errors.New("agent: sink closed")

// FirehoseAPI is the Firehose call a FirehoseSink makes; *firehose.Client
// implements it.
type FirehoseAPI interface {
	PutRecordBatch(ctx context.Context, in *firehose.PutRecordBatchInput, opts ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error)
}

// FirehoseConfig configures a FirehoseSink.
type FirehoseConfig struct {
	// DeliveryStream is the Firehose stream name. Required.
	DeliveryStream string
	// Firehose is the client. Required. Turn its own retries off
	// (aws.NopRetryer): the sink retries.
	Firehose FirehoseAPI
	// MaxBatchRecords caps the records of one PutRecordBatch call. Default
	// and maximum 500.
	MaxBatchRecords int
	// MaxBatchBytes caps the data bytes of one call. Default and maximum
	// 4 MiB.
	MaxBatchBytes int
	// MaxBufferedTime is how long a record may wait for others to fill a
	// call. Default 1s.
	MaxBufferedTime time.Duration
	// RecordTTL is how long a record may go undelivered, retries included,
	// before it fails with ErrRecordExpired. Default 30s.
	RecordTTL time.Duration
	// MinBackoff and MaxBackoff bound the delay before failed records are
	// sent again: a random duration up to MinBackoff·2^(failures-1), at
	// most MaxBackoff, where failures counts the consecutive calls that
	// failed or had failed records (full jitter). Defaults 100ms and 5s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxConnections caps the calls in flight. Default 4.
	MaxConnections int
	// RequestTimeout bounds one call. Default 10s.
	RequestTimeout time.Duration
	// Logger receives warnings. Default no-op. Record data is never logged.
	Logger *zap.Logger
	// Metrics registers the kinesis_agent_firehose_ counters, labelled by
	// delivery stream. Default none.
	Metrics prometheus.Registerer
}

// FirehoseSinkConfig returns the FirehoseConfig of a deliveryStream flow:
// calls of at most maxBufferSizeRecords records and maxBufferSizeBytes
// bytes, records buffered up to maxBufferAgeMillis. logger and reg may be
// nil; the metrics carry a flow label so that several flows can share a
// registry.
func FirehoseSinkConfig(fl config.Flow, client FirehoseAPI, logger *zap.Logger, reg prometheus.Registerer) FirehoseConfig {
	if reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"flow": fl.ID()}, reg)
	}
	return FirehoseConfig{
		Metrics:         reg,
		DeliveryStream:  fl.DeliveryStream,
		Firehose:        client,
		MaxBatchRecords: fl.MaxBufferSizeRecords,
		MaxBatchBytes:   min(max(fl.MaxBufferSizeBytes, fl.MaxRecordSizeBytes+1), FirehoseMaxBatchBytes),
		MaxBufferedTime: fl.MaxBufferAge,
		Logger:          logger,
	}
}

// Validate reports the first problem with c.
func (c *FirehoseConfig) Validate() error {
	switch {
	case c.DeliveryStream == "":
		return errors.New("agent: FirehoseConfig.DeliveryStream is required")
	case c.Firehose == nil:
		return errors.New("agent: FirehoseConfig.Firehose is required")
	case c.MaxBatchRecords < 0 || c.MaxBatchRecords > FirehoseMaxBatchRecords:
		return fmt.Errorf("agent: FirehoseConfig.MaxBatchRecords %d: want 0 (default) to %d", c.MaxBatchRecords, FirehoseMaxBatchRecords)
	case c.MaxBatchBytes < 0 || c.MaxBatchBytes > FirehoseMaxBatchBytes:
		return fmt.Errorf("agent: FirehoseConfig.MaxBatchBytes %d: want 0 (default) to %d", c.MaxBatchBytes, FirehoseMaxBatchBytes)
	case c.MaxBufferedTime < 0, c.RecordTTL < 0, c.MinBackoff < 0, c.MaxBackoff < 0, c.RequestTimeout < 0:
		return errors.New("agent: FirehoseConfig durations must not be negative")
	case c.MaxConnections < 0:
		return errors.New("agent: FirehoseConfig.MaxConnections must not be negative")
	}
	return nil
}

func (c *FirehoseConfig) withDefaults() FirehoseConfig {
	d := *c
	def := func(v *int, x int) {
		if *v == 0 {
			*v = x
		}
	}
	defD := func(v *time.Duration, x time.Duration) {
		if *v == 0 {
			*v = x
		}
	}
	def(&d.MaxBatchRecords, FirehoseMaxBatchRecords)
	def(&d.MaxBatchBytes, FirehoseMaxBatchBytes)
	def(&d.MaxConnections, 4)
	defD(&d.MaxBufferedTime, time.Second)
	defD(&d.RecordTTL, 30*time.Second)
	defD(&d.MinBackoff, 100*time.Millisecond)
	defD(&d.MaxBackoff, 5*time.Second)
	defD(&d.RequestTimeout, 10*time.Second)
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	return d
}

// FirehoseSink sends a flow's records to a Firehose delivery stream with
// PutRecordBatch. Records are sent as they are, one Firehose record per
// line (no aggregation), each ending in a newline as AWS's agent sends
// them: a record without one gets one. Records a call fails, wholly or
// one by one, are sent again after a backoff until their RecordTTL.
type FirehoseSink struct {
	cfg  FirehoseConfig
	m    firehoseMetrics
	kick chan struct{}
	stop chan struct{}
	done chan struct{} // closed when the dispatcher has returned

	mu       sync.Mutex
	queue    []*fhRecord // ready to send, oldest first
	waiting  []*fhRecord // failed, to send again at notBefore
	inflight int         // calls in flight
	flushing bool        // send partial batches now
	failures int         // consecutive calls with a failure
	closed   bool
	sends    sync.WaitGroup
}

type fhRecord struct {
	data      []byte
	done      func(error)
	queued    time.Time // when it entered the queue
	deadline  time.Time // RecordTTL after Put
	notBefore time.Time
	lastErr   error
}

// NewFirehoseSink checks cfg and starts the sink. Close stops it.
func NewFirehoseSink(cfg FirehoseConfig) (*FirehoseSink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &FirehoseSink{
		cfg:  cfg.withDefaults(),
		m:    newFirehoseMetrics(cfg.Metrics, cfg.DeliveryStream),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.dispatch()
	return s, nil
}

// Put queues r. A record larger than 1,000 KiB (with its newline) is
// rejected with ErrRecordRejected. Put does not block: the agent bounds
// the records it has put and not yet seen acknowledged.
func (s *FirehoseSink) Put(ctx context.Context, r Record, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data := r.Data
	if len(data) == 0 || data[len(data)-1] != '\n' {
		data = append(data[:len(data):len(data)], '\n')
	}
	if len(data) > FirehoseMaxRecordBytes {
		return fmt.Errorf("%w: %d bytes, more than Firehose's %d", ErrRecordRejected, len(data), FirehoseMaxRecordBytes)
	}
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSinkClosed
	}
	s.queue = append(s.queue, &fhRecord{data: data, done: done, queued: now, deadline: now.Add(s.cfg.RecordTTL)})
	full := len(s.queue) >= s.cfg.MaxBatchRecords
	s.mu.Unlock()
	if full {
		s.poke()
	}
	return nil
}

// Flush sends what is queued without waiting for a batch to fill.
func (s *FirehoseSink) Flush(ctx context.Context) error {
	s.mu.Lock()
	s.flushing = true
	s.mu.Unlock()
	s.poke()
	return ctx.Err()
}

// Close sends what is queued and waits for it until ctx ends; records not
// delivered by then fail with ErrSinkClosed.
func (s *FirehoseSink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed, s.flushing = true, true
	s.mu.Unlock()
	s.poke()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var err error
	for err == nil && !s.idle() {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-t.C:
		}
	}
	close(s.stop)
	<-s.done
	s.sends.Wait()
	s.mu.Lock()
	left := append(s.queue, s.waiting...)
	s.queue, s.waiting = nil, nil
	s.mu.Unlock()
	for _, r := range left {
		r.done(ErrSinkClosed)
	}
	return err
}

func (s *FirehoseSink) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0 && len(s.waiting) == 0 && s.inflight == 0
}

func (s *FirehoseSink) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// dispatch cuts batches and starts calls while there is room, until stop.
func (s *FirehoseSink) dispatch() {
	defer close(s.done)
	tick := time.NewTicker(min(max(s.cfg.MaxBufferedTime/4, 5*time.Millisecond), 100*time.Millisecond))
	defer tick.Stop()
	for {
		for {
			batch := s.nextBatch(time.Now())
			if batch == nil {
				break
			}
			s.sends.Add(1)
			go func() {
				defer s.sends.Done()
				s.send(batch)
			}()
		}
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-tick.C:
		}
	}
}

// nextBatch takes the next batch to send, or nil when none is due or every
// connection is busy. Records whose backoff has passed go first.
func (s *FirehoseSink) nextBatch(now time.Time) []*fhRecord {
	var expired []*fhRecord
	defer func() { // outside the lock: done takes the flow's
		for _, r := range expired {
			r.done(fmt.Errorf("%w: %w", ErrRecordExpired, r.lastErr))
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) > 0 {
		var due []*fhRecord
		keep := s.waiting[:0]
		for _, r := range s.waiting {
			switch {
			case !now.Before(r.deadline):
				expired = append(expired, r)
				s.m.expired.Inc()
			case r.notBefore.After(now):
				keep = append(keep, r)
			default:
				due = append(due, r)
			}
		}
		clear(s.waiting[len(keep):])
		s.waiting = keep
		if len(due) > 0 {
			s.queue = append(due, s.queue...)
		}
	}
	if s.inflight >= s.cfg.MaxConnections || len(s.queue) == 0 {
		return nil
	}
	n, size := 0, 0
	for n < len(s.queue) && n < s.cfg.MaxBatchRecords && (n == 0 || size+len(s.queue[n].data) <= s.cfg.MaxBatchBytes) {
		size += len(s.queue[n].data)
		n++
	}
	full := n == s.cfg.MaxBatchRecords || n < len(s.queue)
	if !full && !s.flushing && now.Sub(s.queue[0].queued) < s.cfg.MaxBufferedTime {
		return nil
	}
	batch := make([]*fhRecord, n)
	copy(batch, s.queue[:n])
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil
		if !s.closed {
			s.flushing = false
		}
	}
	s.inflight++
	return batch
}

// send makes one PutRecordBatch call and settles its records.
func (s *FirehoseSink) send(batch []*fhRecord) {
	in := &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String(s.cfg.DeliveryStream), Records: make([]types.Record, len(batch))}
	for i, r := range batch {
		in.Records[i] = types.Record{Data: r.data}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	out, err := s.cfg.Firehose.PutRecordBatch(ctx, in)
	cancel()
	s.m.calls.Inc()
	if err != nil {
		s.m.callFailures.Inc()
	}
	var failed []*fhRecord
	switch {
	case err != nil && awserr.Classify(err) == awserr.Fatal:
		// The call will fail the same way (access denied, no such stream):
		// the agent puts the records again after its own backoff.
		s.cfg.Logger.Warn("PutRecordBatch failed", zap.String("deliveryStream", s.cfg.DeliveryStream), zap.Error(err))
		for _, r := range batch {
			r.done(err)
		}
	case err != nil:
		s.cfg.Logger.Debug("PutRecordBatch failed; retrying", zap.String("deliveryStream", s.cfg.DeliveryStream), zap.Error(err))
		for _, r := range batch {
			r.lastErr = err
		}
		failed = batch
	case len(out.RequestResponses) != len(batch):
		err = fmt.Errorf("agent: PutRecordBatch answered %d results for %d records", len(out.RequestResponses), len(batch))
		for _, r := range batch {
			r.lastErr = err
		}
		failed = batch
	default:
		for i, res := range out.RequestResponses {
			r := batch[i]
			if res.ErrorCode == nil {
				r.done(nil)
				continue
			}
			r.lastErr = fmt.Errorf("agent: PutRecordBatch record: %s: %s", aws.ToString(res.ErrorCode), aws.ToString(res.ErrorMessage))
			failed = append(failed, r)
		}
		s.m.recordFailures.Add(float64(len(failed)))
	}

	s.mu.Lock()
	s.inflight--
	if len(failed) == 0 {
		s.failures = 0
	} else {
		s.failures++
		at := time.Now().Add(backoff.Policy{Base: s.cfg.MinBackoff, Max: s.cfg.MaxBackoff}.Delay(s.failures))
		for _, r := range failed {
			r.notBefore = at
		}
		s.waiting = append(s.waiting, failed...)
	}
	s.mu.Unlock()
	s.poke()
}

// firehoseMetrics are a FirehoseSink's counters.
type firehoseMetrics struct {
	calls, callFailures, recordFailures, expired prometheus.Counter
}

func newFirehoseMetrics(reg prometheus.Registerer, stream string) firehoseMetrics {
	counter := func(name, help string) prometheus.Counter {
		return metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kinesis_agent_firehose_" + name, Help: help},
			[]string{"delivery_stream"})).WithLabelValues(stream)
	}
	return firehoseMetrics{
		calls:          counter("calls_total", "PutRecordBatch calls made."),
		callFailures:   counter("call_failures_total", "PutRecordBatch calls that failed whole (throttled, faults, network)."),
		recordFailures: counter("record_failures_total", "Records a PutRecordBatch call failed one by one; each is sent again."),
		expired:        counter("records_expired_total", "Records not delivered within RecordTTL, handed back to the agent."),
	}
}
