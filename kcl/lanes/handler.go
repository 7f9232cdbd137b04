package lanes

import (
	"context"
	"fmt"

	"github.com/kinesisgo/kinesis/kcl"
)

// Handler processes the batches of a lane. Lanes of one shard, and of
// different shards, call it concurrently: it must be safe for concurrent
// use. The calls of one lane are sequential, in the shard's order.
//
// Returning nil means every record of the batch is processed. Any other
// error fails the call: the batch is retried (or split, with
// Config.Bisect), and given up on as Config.MaxRetries and
// Config.MaxRecordAge say. An error made with FailedFrom reports a partial
// result: the records before the failed one are processed and are not
// handed over again.
type Handler interface {
	Handle(ctx context.Context, b *Batch) error
}

// HandlerFunc adapts a plain function to a Handler.
type HandlerFunc func(ctx context.Context, b *Batch) error

// Handle calls f(ctx, b).
func (f HandlerFunc) Handle(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Batch is what Handler receives: records of one shard routed to one lane,
// in the shard's order.
type Batch struct {
	// ShardID is the shard the records come from.
	ShardID string
	// Lane is the lane handling the batch, from 0 to Config.Parallelism-1.
	Lane int
	// Records are the records, never empty. The handler may keep them.
	Records []kcl.Record
	// Attempt is the number of this call for these records: 1 the first
	// time they are handled, more when they are retried.
	Attempt int
}

// BatchItemFailure is the partial result of a Handler call: the records
// before Index were processed, the record at Index failed with Err (the
// records after it were not processed). Make it with FailedFrom; match it
// with errors.As.
type BatchItemFailure struct {
	// Index is the position in Batch.Records of the first record that
	// failed.
	Index int
	// Err is why it failed.
	Err error
}

// FailedFrom returns the error a Handler returns when the records of its
// batch before index i were processed and the record at i failed with err.
// FailedFrom(0, err) fails the whole batch, as err would; an i outside the
// batch fails the whole batch too. It is the equivalent of AWS Lambda's
// ReportBatchItemFailures.
func FailedFrom(i int, err error) error {
	return &BatchItemFailure{Index: i, Err: err}
}

func (e *BatchItemFailure) Error() string {
	return fmt.Sprintf("record %d of the batch failed: %v", e.Index, e.Err)
}

// Unwrap returns Err.
func (e *BatchItemFailure) Unwrap() error { return e.Err }
