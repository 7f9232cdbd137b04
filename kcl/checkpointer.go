package kcl

import (
	"context"
	"sync"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

// Checkpointer records how far a shard was processed, in the shard's lease.
// Checkpoints are fenced: once the worker no longer holds the lease they
// fail with an error matching lease.ErrLeaseLost. They go forward only and
// never past the last record delivered to the processor. It is safe for
// concurrent use.
type Checkpointer struct {
	cp *checkpoint.Checkpointer

	mu sync.Mutex
	// last is the position of the last record delivered.
	last checkpoint.SequenceNumber
}

func newCheckpointer(u checkpoint.Updater, l lease.Lease) *Checkpointer {
	return &Checkpointer{cp: checkpoint.New(u, l)}
}

// delivered records that records up to pos were handed to the processor.
// Only the shard's goroutine calls it.
func (c *Checkpointer) delivered(pos checkpoint.SequenceNumber) {
	c.mu.Lock()
	c.last = pos
	c.mu.Unlock()
	c.cp.Delivered(pos)
}

// Checkpoint records that every record delivered so far is processed. It
// does nothing before the first record.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	c.mu.Lock()
	pos := c.last
	c.mu.Unlock()
	if pos.Sequence == "" || pos.Compare(c.cp.Last()) <= 0 {
		return nil
	}
	return c.cp.Checkpoint(ctx, pos.Sequence, pos.SubSequence)
}

// CheckpointAt records that every record up to and including the user
// record (seq, subSeq) is processed. It fails with checkpoint.ErrInvalid,
// checkpoint.ErrBackwards, checkpoint.ErrBeyondDelivered or
// lease.ErrLeaseLost (match with errors.Is).
func (c *Checkpointer) CheckpointAt(ctx context.Context, seq string, subSeq int64) error {
	return c.cp.Checkpoint(ctx, seq, subSeq)
}

// PrepareCheckpoint records (seq, subSeq) as the lease's pending checkpoint:
// one the processor intends to make once its side effects are done. A
// worker that takes the shard over sees it in InitializeInput. Same errors
// as CheckpointAt.
func (c *Checkpointer) PrepareCheckpoint(ctx context.Context, seq string, subSeq int64) error {
	return c.cp.PrepareCheckpoint(ctx, seq, subSeq)
}

// Last returns the checkpoint recorded in the lease: sequence number (or
// sentinel) and sub-sequence number.
func (c *Checkpointer) Last() (seq string, subSeq int64) {
	l := c.cp.Last()
	return l.Sequence, l.SubSequence
}
