package lanes

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Limits and defaults of Config.
const (
	// MaxParallelism is the largest Config.Parallelism.
	MaxParallelism = 1000
	// DefaultMaxInFlight is the default Config.MaxInFlight.
	DefaultMaxInFlight = 10000
	// DefaultRetryBackoffBase is the default Config.RetryBackoffBase.
	DefaultRetryBackoffBase = 100 * time.Millisecond
	// DefaultRetryBackoffMax is the default Config.RetryBackoffMax.
	DefaultRetryBackoffMax = 10 * time.Second
)

// NoRetries is the Config.MaxRetries that sends the records of a failed
// call to the destination without retrying them.
const NoRetries = -1

// Config configures the processing of each shard. The zero value of every
// field but Handler keeps the kcl worker's own behaviour: one lane per
// shard, each batch handed to the handler as the worker delivered it,
// retried until it succeeds.
type Config struct {
	// Handler processes the batches. Required.
	Handler Handler

	// Parallelism is the number of lanes per shard. The lanes call Handler
	// concurrently, each with its own batches. The records of a partition
	// key go to the lane that holds the key's earlier records while it
	// holds any (so each key keeps its order), and otherwise to the lane
	// holding the fewest records. Default 1; at most MaxParallelism. AWS
	// Lambda's ParallelizationFactor.
	Parallelism int
	// MaxInFlight bounds the records of a shard held above its checkpoint
	// watermark (queued in a lane, being handled, or handled while an
	// earlier record of another lane is not): ProcessRecords blocks,
	// before it queues a batch, while MaxInFlight or more are held. At
	// most MaxInFlight plus one delivered batch (see
	// kcl.RetrievalConfig.MaxRecords) are held, and a crash makes the next
	// owner process at most those again. Default DefaultMaxInFlight.
	MaxInFlight int

	// BatchSize is the most records per Handler call. Default 0: each call
	// gets the records of one batch the worker delivered (those routed to
	// the lane, with Parallelism above 1). When BatchSize or BatchBytes is
	// set, a lane's batch may join records of several deliveries. AWS
	// Lambda's BatchSize.
	BatchSize int
	// BatchBytes is the most record data bytes per Handler call (a record
	// larger than it is handled alone). Default 0: no limit.
	BatchBytes int
	// BatchWindow is how long a lane waits for its batch to fill (to
	// BatchSize or BatchBytes), from the first record queued in it, before
	// calling Handler with what it has. Requires BatchSize or BatchBytes.
	// Default 0: no wait. A shutdown or a shard's end does not wait. AWS
	// Lambda's MaximumBatchingWindowInSeconds.
	BatchWindow time.Duration

	// MaxRetries is how many times a failed Handler call is retried
	// before its records are sent to Destination. Default 0: retried until
	// it succeeds; NoRetries (-1): not retried. With Bisect, the calls of
	// the split halves are not counted: MaxRetries counts the retries of a
	// batch that could not be split further. AWS Lambda's
	// MaximumRetryAttempts.
	MaxRetries int
	// MaxRecordAge sends a record to Destination instead of handling it
	// (again) once it is older than this, by its
	// ApproximateArrivalTimestamp. Default 0: no limit. AWS Lambda's
	// MaximumRecordAgeInSeconds.
	MaxRecordAge time.Duration
	// Bisect splits a batch whose Handler call failed in two halves, each
	// retried on its own (the first, then the second), until the failing
	// records are alone in their batches. Default false. AWS Lambda's
	// BisectBatchOnFunctionError.
	Bisect bool
	// RetryBackoffBase is the longest wait before the first retry of a
	// lane's failed call: each wait is random between zero and a ceiling
	// that starts at RetryBackoffBase and doubles with each consecutive
	// failure of the lane, up to RetryBackoffMax. Default
	// DefaultRetryBackoffBase.
	RetryBackoffBase time.Duration
	// RetryBackoffMax caps the wait between retries. Default
	// DefaultRetryBackoffMax; at least RetryBackoffBase.
	RetryBackoffMax time.Duration

	// CheckpointInterval is the least time between two checkpoints of a
	// shard: a longer one makes fewer lease table writes and leaves more
	// records to process again after a crash. Default 0: the watermark is
	// checkpointed whenever it moves, one write at a time. ShardEnded and
	// ShutdownRequested checkpoint at once.
	CheckpointInterval time.Duration

	// Destination receives the records that MaxRetries or MaxRecordAge
	// gave up on. The checkpoint moves past a record only once it was
	// handled or Destination.Send returned nil for it; a failed Send is
	// retried with the same backoff until it succeeds. Required with
	// MaxRetries or MaxRecordAge, rejected without them (it would never be
	// called). AWS Lambda's on-failure destination.
	Destination Destination

	// Logger receives the logs of the lanes. Default none. Logs name
	// shards, lanes and sequence numbers, never record data.
	Logger *zap.Logger
	// Metrics registers the lanes' metrics (kinesis_kcl_lane_*, labelled
	// by shard and lane). Default none.
	Metrics prometheus.Registerer
}

// Validate reports the first setting that is out of range or has no effect.
func (c Config) Validate() error {
	var errs []error
	if c.Handler == nil {
		errs = append(errs, errors.New("a Handler is required"))
	}
	if c.Parallelism < 0 || c.Parallelism > MaxParallelism {
		errs = append(errs, fmt.Errorf("invalid Parallelism %d: must be between 1 and %d (0: 1)", c.Parallelism, MaxParallelism))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxInFlight", c.MaxInFlight}, {"BatchSize", c.BatchSize}, {"BatchBytes", c.BatchBytes}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("invalid %s %d: must not be negative", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"BatchWindow", c.BatchWindow}, {"MaxRecordAge", c.MaxRecordAge},
		{"RetryBackoffBase", c.RetryBackoffBase}, {"RetryBackoffMax", c.RetryBackoffMax},
		{"CheckpointInterval", c.CheckpointInterval}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("invalid %s %v: must not be negative", f.name, f.v))
		}
	}
	if c.BatchWindow > 0 && c.BatchSize == 0 && c.BatchBytes == 0 {
		errs = append(errs, fmt.Errorf("invalid BatchWindow %v: needs BatchSize or BatchBytes to fill to", c.BatchWindow))
	}
	if c.MaxRetries < NoRetries {
		errs = append(errs, fmt.Errorf("invalid MaxRetries %d: must be NoRetries (-1), 0 (retry until success) or positive", c.MaxRetries))
	}
	c = c.withDefaults()
	if c.RetryBackoffMax < c.RetryBackoffBase {
		errs = append(errs, fmt.Errorf("invalid RetryBackoffMax %v: must be at least RetryBackoffBase %v", c.RetryBackoffMax, c.RetryBackoffBase))
	}
	givesUp := c.MaxRetries != 0 || c.MaxRecordAge > 0
	switch {
	case givesUp && c.Destination == nil:
		errs = append(errs, errors.New("a Destination is required with MaxRetries or MaxRecordAge: records given up on must go somewhere"))
	case !givesUp && c.Destination != nil:
		errs = append(errs, errors.New("a Destination has no effect without MaxRetries or MaxRecordAge: records are retried until handled"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lanes: invalid Config: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Parallelism == 0 {
		c.Parallelism = 1
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RetryBackoffBase == 0 {
		c.RetryBackoffBase = DefaultRetryBackoffBase
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = max(DefaultRetryBackoffMax, c.RetryBackoffBase)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// keepsDeliveries tells whether a lane's batch holds the records of one
// delivery only.
func (c Config) keepsDeliveries() bool { return c.BatchSize == 0 && c.BatchBytes == 0 }
