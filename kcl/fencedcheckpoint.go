package kcl

import (
	"context"
	"fmt"
	"sync"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

// leaseUpdater makes fenced writes to a held lease; *lease.Coordinator is
// one. Update must fail with lease.ErrLeaseLost when the lease is not held
// (any more).
type leaseUpdater interface {
	Update(ctx context.Context, key string, fn func(*lease.Lease) error) (lease.Lease, error)
}

// fencedCheckpointer records the progress of one shard in its lease,
// while the worker holds it: every write is conditional on the lease
// counter. The worker tells it which records it delivered (delivered); the
// processor checkpoints at or before the last of them. It is safe for
// concurrent use.
type fencedCheckpointer struct {
	u   leaseUpdater
	key string

	mu         sync.Mutex
	last       checkpoint.SequenceNumber // as recorded in the lease
	delivered  checkpoint.SequenceNumber // highest position delivered
	pending    checkpoint.SequenceNumber
	hasPending bool
}

// newFencedCheckpointer returns a fencedCheckpointer for the held lease l
// (as the coordinator reported it when it was acquired), writing through u.
func newFencedCheckpointer(u leaseUpdater, l lease.Lease) *fencedCheckpointer {
	c := &fencedCheckpointer{u: u, key: l.Key, last: l.CheckpointSequence()}
	c.delivered = c.last
	c.pending, c.hasPending = l.PendingSequence()
	return c
}

// Key returns the lease key (shard ID) the Checkpointer writes.
func (c *fencedCheckpointer) Key() string { return c.key }

// Delivered records that the records up to pos were handed to the
// processor; pass checkpoint.ShardEnd once every record of a closed shard was.
// Positions that are not past the highest one recorded are ignored.
func (c *fencedCheckpointer) Delivered(pos checkpoint.SequenceNumber) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pos.Compare(c.delivered) > 0 {
		c.delivered = pos
	}
}

// Last returns the checkpoint recorded in the lease.
func (c *fencedCheckpointer) Last() checkpoint.SequenceNumber {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Pending returns the prepared checkpoint, if any.
func (c *fencedCheckpointer) Pending() (checkpoint.SequenceNumber, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending, c.hasPending
}

// Checkpoint records that every record up to and including (seq, subSeq)
// was processed. seq is a record's sequence number, or SHARD_END once the
// shard ended and all its records were delivered. It fails with
// checkpoint.ErrInvalid, checkpoint.ErrBackwards (below the recorded checkpoint),
// checkpoint.ErrBeyondDelivered (past the last record delivered) or lease.ErrLeaseLost. A
// pending checkpoint is cleared.
func (c *fencedCheckpointer) Checkpoint(ctx context.Context, seq string, subSeq uint64) error {
	return c.write(ctx, "checkpoint", seq, subSeq, func(l *lease.Lease, pos checkpoint.SequenceNumber) {
		l.Checkpoint, l.CheckpointSubSequence = pos.Sequence, pos.SubSequence
		l.PendingCheckpoint, l.PendingCheckpointSubSequence = "", 0
		l.OwnerSwitchesSinceCheckpoint = 0
	})
}

// PrepareCheckpoint records (seq, subSeq) as the pending checkpoint: a
// checkpoint the processor intends to make once side effects are done. The
// recorded checkpoint does not move. Same errors as Checkpoint.
func (c *fencedCheckpointer) PrepareCheckpoint(ctx context.Context, seq string, subSeq uint64) error {
	return c.write(ctx, "prepare checkpoint", seq, subSeq, func(l *lease.Lease, pos checkpoint.SequenceNumber) {
		l.PendingCheckpoint, l.PendingCheckpointSubSequence = pos.Sequence, pos.SubSequence
	})
}

// write checks (seq, subSeq), then applies set to the lease in one fenced
// update that refuses to go below the checkpoint recorded in the table,
// and takes the stored checkpoint and pending checkpoint from its result.
// Writes are serialised by c.mu.
func (c *fencedCheckpointer) write(ctx context.Context, op, seq string, subSeq uint64, set func(*lease.Lease, checkpoint.SequenceNumber)) error {
	pos, err := c.check(seq, subSeq)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	stored, err := c.u.Update(ctx, c.key, func(l *lease.Lease) error {
		if cur := l.CheckpointSequence(); pos.Compare(cur) < 0 {
			return fmt.Errorf("%s %s of lease %q: %w (recorded: %s)", op, pos, c.key, checkpoint.ErrBackwards, cur)
		}
		set(l, pos)
		return nil
	})
	if err != nil {
		return err
	}
	c.last = stored.CheckpointSequence()
	c.pending, c.hasPending = stored.PendingSequence()
	return nil
}

// check validates a requested checkpoint against what was recorded and
// delivered.
func (c *fencedCheckpointer) check(seq string, subSeq uint64) (checkpoint.SequenceNumber, error) {
	pos, err := checkpoint.Parse(seq, subSeq)
	if err != nil {
		return checkpoint.SequenceNumber{}, fmt.Errorf("checkpoint lease %q: %w", c.key, err)
	}
	if pos.IsPosition() && pos != checkpoint.ShardEnd.SequenceNumber() {
		return checkpoint.SequenceNumber{}, fmt.Errorf("checkpoint lease %q: %w: %s is not a record's position", c.key, checkpoint.ErrInvalid, pos)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if pos.Compare(c.last) < 0 {
		return checkpoint.SequenceNumber{}, fmt.Errorf("checkpoint %s of lease %q: %w (recorded: %s)", pos, c.key, checkpoint.ErrBackwards, c.last)
	}
	if pos.Compare(c.delivered) > 0 {
		return checkpoint.SequenceNumber{}, fmt.Errorf("checkpoint %s of lease %q: %w (delivered up to %s)", pos, c.key, checkpoint.ErrBeyondDelivered, c.delivered)
	}
	return pos, nil
}
