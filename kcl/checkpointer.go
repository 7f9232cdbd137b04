package kcl

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

// Checkpointer records how far a shard was processed, in the shard's lease.
// Checkpoints are fenced: every write is conditional on the lease counter,
// and once the worker no longer holds the lease they fail with an error
// matching lease.ErrLeaseLost. They go forward only and never past the
// last record delivered to the processor. It is safe for concurrent use.
//
// Inside ProcessRecords, the batch at hand is checkpointed with
// Batch.Checkpoint; CheckpointProcessed covers only the batches
// ProcessRecords has already returned nil for.
type Checkpointer struct {
	cp *fencedCheckpointer
	// lost is set when the shard's processing stopped because its lease
	// was lost. The lease table alone cannot fence this holding once the
	// worker has taken the lease again: writes go through the worker's
	// current holding of the lease.
	lost *atomic.Bool

	mu sync.Mutex
	// processed is the position of the last record of the last batch
	// ProcessRecords returned nil for (or that was skipped by the error
	// policy).
	processed checkpoint.SequenceNumber
}

func newCheckpointer(u leaseUpdater, l lease.Lease, lost *atomic.Bool) *Checkpointer {
	return &Checkpointer{cp: newFencedCheckpointer(u, l), lost: lost}
}

// errIfLost fails once the holding the Checkpointer was made for is lost.
func (c *Checkpointer) errIfLost() error {
	if c.lost != nil && c.lost.Load() {
		return fmt.Errorf("checkpoint lease %q: %w", c.cp.Key(), lease.ErrLeaseLost)
	}
	return nil
}

// delivered records that records up to pos were handed to the processor:
// checkpoints up to pos are allowed from then on.
func (c *Checkpointer) delivered(pos checkpoint.SequenceNumber) {
	c.cp.Delivered(pos)
}

// done records that the records up to pos are processed.
func (c *Checkpointer) done(pos checkpoint.SequenceNumber) {
	c.mu.Lock()
	c.processed = pos
	c.mu.Unlock()
}

// CheckpointProcessed records that every record of the batches
// ProcessRecords returned nil for (or that the error policy skipped) is
// processed. Inside ProcessRecords that excludes the batch at hand: use
// Batch.Checkpoint for it. In ShardEnded and ShutdownRequested it covers
// everything delivered and processed. It does nothing when there is
// nothing new to record. Same errors as CheckpointAt.
func (c *Checkpointer) CheckpointProcessed(ctx context.Context) error {
	c.mu.Lock()
	pos := c.processed
	c.mu.Unlock()
	if err := c.errIfLost(); err != nil {
		return err
	}
	if pos.Sequence == "" || pos.Compare(c.cp.Last()) <= 0 {
		return nil
	}
	return c.cp.Checkpoint(ctx, pos.Sequence, pos.SubSequence)
}

// CheckpointAt records that every record up to and including the user
// record (seq, subSeq) is processed. It fails with checkpoint.ErrInvalid,
// checkpoint.ErrBackwards, checkpoint.ErrBeyondDelivered or
// lease.ErrLeaseLost (match with errors.Is).
func (c *Checkpointer) CheckpointAt(ctx context.Context, seq string, subSeq uint64) error {
	if err := c.errIfLost(); err != nil {
		return err
	}
	return c.cp.Checkpoint(ctx, seq, subSeq)
}

// PrepareCheckpoint records (seq, subSeq) as the lease's pending checkpoint:
// one the processor intends to make once its side effects are done. A
// worker that takes the shard over sees it in InitializeInput. Same errors
// as CheckpointAt.
func (c *Checkpointer) PrepareCheckpoint(ctx context.Context, seq string, subSeq uint64) error {
	if err := c.errIfLost(); err != nil {
		return err
	}
	return c.cp.PrepareCheckpoint(ctx, seq, subSeq)
}

// Last returns the checkpoint recorded in the lease: a record's extended
// sequence number, or a checkpoint.Position.
func (c *Checkpointer) Last() checkpoint.SequenceNumber {
	return c.cp.Last()
}
