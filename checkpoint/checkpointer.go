package checkpoint

import (
	"context"
	"fmt"
	"sync"

	"github.com/kinesisgo/kinesis/lease"
)

// Updater makes fenced writes to a held lease; *lease.Coordinator is one.
// Update must fail with lease.ErrLeaseLost when the lease is not held (any
// more).
type Updater interface {
	Update(ctx context.Context, key string, fn func(*lease.Lease) error) (lease.Lease, error)
}

// Checkpointer records the progress of one shard in its lease, while the
// worker holds it. The consumer tells it which records it delivered
// (Delivered); the processor checkpoints at or before the last of them. It
// is safe for concurrent use.
type Checkpointer struct {
	u   Updater
	key string

	mu         sync.Mutex
	last       SequenceNumber // as recorded in the lease
	delivered  SequenceNumber // highest position delivered
	pending    SequenceNumber
	hasPending bool
}

// New returns a Checkpointer for the held lease l (as the coordinator
// reported it when it was acquired), writing through u.
func New(u Updater, l lease.Lease) *Checkpointer {
	c := &Checkpointer{u: u, key: l.Key, last: OfLease(l)}
	c.delivered = c.last
	c.pending, c.hasPending = PendingOfLease(l)
	return c
}

// Key returns the lease key (shard ID) the Checkpointer writes.
func (c *Checkpointer) Key() string { return c.key }

// Delivered records that the records up to pos were handed to the
// processor; pass ShardEnd once every record of a closed shard was.
// Positions that are not past the highest one recorded are ignored.
func (c *Checkpointer) Delivered(pos SequenceNumber) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pos.Compare(c.delivered) > 0 {
		c.delivered = pos
	}
}

// Last returns the checkpoint recorded in the lease.
func (c *Checkpointer) Last() SequenceNumber {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Pending returns the prepared checkpoint, if any.
func (c *Checkpointer) Pending() (SequenceNumber, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending, c.hasPending
}

// Checkpoint records that every record up to and including (seq, subSeq)
// was processed. seq is a record's sequence number, or SHARD_END once the
// shard ended and all its records were delivered. It fails with
// ErrInvalid, ErrBackwards (below the recorded checkpoint),
// ErrBeyondDelivered (past the last record delivered) or ErrLeaseLost. A
// pending checkpoint is cleared.
func (c *Checkpointer) Checkpoint(ctx context.Context, seq string, subSeq int64) error {
	pos, err := c.check(seq, subSeq)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	stored, err := c.u.Update(ctx, c.key, func(l *lease.Lease) error {
		if cur := OfLease(*l); pos.Compare(cur) < 0 {
			return fmt.Errorf("checkpoint %s of lease %q: %w (recorded: %s)", pos, c.key, ErrBackwards, cur)
		}
		l.Checkpoint, l.CheckpointSubSequence = pos.Sequence, pos.SubSequence
		l.PendingCheckpoint, l.PendingCheckpointSubSequence = "", 0
		l.OwnerSwitchesSinceCheckpoint = 0
		return nil
	})
	if err != nil {
		return err
	}
	c.last = OfLease(stored)
	c.hasPending = false
	return nil
}

// PrepareCheckpoint records (seq, subSeq) as the pending checkpoint: a
// checkpoint the processor intends to make once side effects are done. The
// recorded checkpoint does not move. Same errors as Checkpoint.
func (c *Checkpointer) PrepareCheckpoint(ctx context.Context, seq string, subSeq int64) error {
	pos, err := c.check(seq, subSeq)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	stored, err := c.u.Update(ctx, c.key, func(l *lease.Lease) error {
		if cur := OfLease(*l); pos.Compare(cur) < 0 {
			return fmt.Errorf("prepare checkpoint %s of lease %q: %w (recorded: %s)", pos, c.key, ErrBackwards, cur)
		}
		l.PendingCheckpoint, l.PendingCheckpointSubSequence = pos.Sequence, pos.SubSequence
		return nil
	})
	if err != nil {
		return err
	}
	c.last = OfLease(stored)
	c.pending, c.hasPending = PendingOfLease(stored)
	return nil
}

// check validates a requested checkpoint against what was recorded and
// delivered.
func (c *Checkpointer) check(seq string, subSeq int64) (SequenceNumber, error) {
	pos, err := Parse(seq, subSeq)
	if err != nil {
		return SequenceNumber{}, fmt.Errorf("checkpoint lease %q: %w", c.key, err)
	}
	if pos.IsSentinel() && pos != ShardEnd {
		return SequenceNumber{}, fmt.Errorf("checkpoint lease %q: %w: %s is not a record's position", c.key, ErrInvalid, pos)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if pos.Compare(c.last) < 0 {
		return SequenceNumber{}, fmt.Errorf("checkpoint %s of lease %q: %w (recorded: %s)", pos, c.key, ErrBackwards, c.last)
	}
	if pos.Compare(c.delivered) > 0 {
		return SequenceNumber{}, fmt.Errorf("checkpoint %s of lease %q: %w (delivered up to %s)", pos, c.key, ErrBeyondDelivered, c.delivered)
	}
	return pos, nil
}
