package kcl

import (
	"context"
	"errors"
	"time"
)

// RecordProcessor receives the records of the shards a worker holds, with the
// lifecycle of the Java KCL's ShardRecordProcessor in Go form.
//
// For one shard the methods are called one at a time, in this order:
// Initialize, then ProcessRecords any number of times, then exactly one of
// LeaseLost, ShardEnded or ShutdownRequested (none of them when the worker is
// aborted, as a crash would). Calls for different shards run concurrently, so
// a processor shared by all shards (Config.Processor) must be safe for
// concurrent use; Config.NewProcessor makes one processor per shard instead.
//
// Any method may block; a long call delays only its own shard. The context
// passed in is cancelled when the lease is lost or the worker is aborted: a
// method should then return promptly.
type RecordProcessor interface {
	// Initialize is called once before the first ProcessRecords of a shard,
	// with the checkpoint the shard resumes from. An error is retried with
	// backoff, as for ProcessRecords.
	Initialize(ctx context.Context, in *InitializeInput) error

	// ProcessRecords handles one batch of records of a shard (never an empty
	// one). Records of a shard arrive in order; per partition key, records of
	// a parent shard are delivered before those of its children.
	//
	// Returning nil means the batch is done; progress is only kept across
	// restarts and fail-overs when the processor checkpoints (b.Checkpoint).
	// Returning an error applies Config.OnProcessError: by default the same
	// batch is retried with backoff until it succeeds. Records are never
	// skipped silently.
	ProcessRecords(ctx context.Context, b *Batch) error

	// LeaseLost is called when another worker has taken the shard's lease.
	// Processing of the shard has stopped and checkpoints no longer succeed;
	// the processor should drop what it holds for the shard.
	LeaseLost(ctx context.Context, in *LeaseLostInput)

	// ShardEnded is called once every record of a closed shard (after a split
	// or merge) has been processed. When it returns nil the worker
	// checkpoints SHARD_END itself, which lets the child shards start; an
	// error is retried with backoff. The processor may flush what it holds;
	// in.Checkpointer is live.
	//
	// It is also called, with in.Expired set, for a closed shard that aged
	// out of the stream's retention period before it was read to its end
	// (its unread records are gone with it): the shard is over all the same,
	// and the processor may flush what it holds before its children start.
	ShardEnded(ctx context.Context, in *ShardEndedInput) error

	// ShutdownRequested is called on graceful shutdown, and when another
	// worker asked for the lease to balance the load (a hand-over), after
	// the last ProcessRecords of the shard has returned and before its
	// lease is released (to that worker, which resumes from the last
	// checkpoint), so that the processor can flush and checkpoint
	// (in.Checkpointer is live; its Checkpoint method records every batch
	// ProcessRecords returned nil for, and not a batch still failing). An
	// error is logged and the lease released anyway. ctx ends with the
	// shutdown's deadline (Config.ShutdownTimeout, or Shutdown's context).
	ShutdownRequested(ctx context.Context, in *ShutdownRequestedInput) error
}

// ProcessorFunc adapts a plain function to a RecordProcessor: the function
// handles ProcessRecords and the other methods do nothing. The function
// checkpoints as it sees fit, typically with `return b.Checkpoint(ctx)`.
// The worker still checkpoints SHARD_END at the end of a shard.
type ProcessorFunc func(ctx context.Context, b *Batch) error

// Initialize does nothing.
func (ProcessorFunc) Initialize(context.Context, *InitializeInput) error { return nil }

// ProcessRecords calls f(ctx, b).
func (f ProcessorFunc) ProcessRecords(ctx context.Context, b *Batch) error { return f(ctx, b) }

// LeaseLost does nothing.
func (ProcessorFunc) LeaseLost(context.Context, *LeaseLostInput) {}

// ShardEnded does nothing; the worker checkpoints SHARD_END.
func (ProcessorFunc) ShardEnded(context.Context, *ShardEndedInput) error { return nil }

// ShutdownRequested does nothing.
func (ProcessorFunc) ShutdownRequested(context.Context, *ShutdownRequestedInput) error { return nil }

// InitializeInput is what Initialize receives.
type InitializeInput struct {
	// ShardID is the shard about to be processed.
	ShardID string
	// Checkpoint is where processing resumes: a sequence number, or one of
	// TRIM_HORIZON, LATEST, AT_TIMESTAMP for a shard never checkpointed.
	Checkpoint string
	// CheckpointSubSequenceNumber is the sub-sequence number of Checkpoint.
	CheckpointSubSequenceNumber uint64
	// PendingCheckpoint is the checkpoint a previous owner prepared but did
	// not commit (PrepareCheckpoint), empty when there is none.
	PendingCheckpoint string
	// PendingCheckpointSubSequenceNumber is the sub-sequence number of
	// PendingCheckpoint.
	PendingCheckpointSubSequenceNumber uint64
}

// LeaseLostInput is what LeaseLost receives.
type LeaseLostInput struct {
	// ShardID is the shard whose lease was lost.
	ShardID string
}

// ShardEndedInput is what ShardEnded receives.
type ShardEndedInput struct {
	// ShardID is the closed shard.
	ShardID string
	// Checkpointer checkpoints the shard; the worker checkpoints SHARD_END
	// after ShardEnded returns nil.
	Checkpointer *Checkpointer
	// Expired is set when the shard aged out of the stream's retention
	// period before its last record was read: Kinesis no longer has it,
	// and the records not delivered were lost (counted in
	// kinesis_kcl_shards_expired_total).
	Expired bool
}

// ShutdownRequestedInput is what ShutdownRequested receives.
type ShutdownRequestedInput struct {
	// ShardID is the shard being handed back.
	ShardID string
	// Checkpointer checkpoints the shard; it is live until
	// ShutdownRequested returns.
	Checkpointer *Checkpointer
}

// Record is one user record: a plain Kinesis record, or one of the user
// records inside a KPL aggregated record.
type Record struct {
	// ShardID is the shard the record was read from.
	ShardID string
	// SequenceNumber is the Kinesis sequence number (a decimal string of up
	// to 128 bits). User records of one aggregated record share it.
	SequenceNumber string
	// SubSequenceNumber is the position of the user record inside its
	// aggregated record, from 0; always 0 for a plain record.
	SubSequenceNumber uint64
	// Aggregated tells whether the record came out of a KPL aggregated record.
	Aggregated bool
	// PartitionKey is the record's partition key (the user record's own key
	// for an aggregated record).
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key, when the
	// producer set one inside an aggregated record; empty otherwise.
	ExplicitHashKey string
	// ApproximateArrivalTimestamp is when Kinesis accepted the record.
	ApproximateArrivalTimestamp time.Time
	// Data is the record's payload. The processor may keep it.
	Data []byte
}

// Batch is what ProcessRecords receives: records of one shard, in order.
type Batch struct {
	// ShardID is the shard the records come from.
	ShardID string
	// Records are the user records, never empty.
	Records []Record
	// MillisBehindLatest is how far behind the tip of the shard the read
	// that returned these records was, in milliseconds.
	MillisBehindLatest int64
	// Checkpointer checkpoints the shard.
	Checkpointer *Checkpointer
}

// Checkpoint records that every record of the batch is processed: after a
// restart or fail-over, processing resumes after the batch's last record.
// It fails with an error matching lease.ErrLeaseLost when the shard's lease
// has moved to another worker.
func (b *Batch) Checkpoint(ctx context.Context) error {
	if b.Checkpointer == nil {
		return errors.New("kcl: Batch.Checkpoint: the batch has no Checkpointer (not made by a Worker)")
	}
	if len(b.Records) == 0 {
		return nil
	}
	last := b.Records[len(b.Records)-1]
	return b.Checkpointer.CheckpointAt(ctx, last.SequenceNumber, last.SubSequenceNumber)
}
