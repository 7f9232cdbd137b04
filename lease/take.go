package lease

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
)

// expiryLag is how long after a lease's or a worker's expected expiry the
// extra pass scheduled for it runs.
const expiryLag = 10 * time.Millisecond

// askHandOver asks the live worker holding l to hand it over to worker to
// (Store.HandOver): the holder finishes its batch, checkpoints and
// releases the lease to that worker, which takes it up then, so a move to
// balance the load delivers no record twice. A hand-over already in
// progress to another worker is redirected (never taken from its holder's
// hands). A holder that does not finish within FailoverTime has the lease
// taken by the next owner. It reports success.
func (c *Coordinator) askHandOver(ctx context.Context, l Lease, to string) bool {
	try := func() error {
		return withRetry(ctx, c.retry, func() error {
			_, err := c.cfg.Store.HandOver(ctx, l, to)
			if err != nil && ctx.Err() == nil {
				c.countStoreError("hand_over", err)
			}
			return err
		})
	}
	err := try()
	if errors.Is(err, ErrConflict) {
		// Renewed since the scan, most likely: ask again on the counter
		// read now, if the lease is still where the plan saw it.
		if cur, gerr := c.get(ctx, l.Key); gerr == nil && cur.Owner == l.Owner && cur.CheckpointOwner == l.CheckpointOwner && !cur.Finished() {
			l = cur
			err = try()
		}
	}
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrConflict) {
			c.log.Warn("leader: asking for a lease failed", zap.String("lease", l.Key), zap.String("from", l.Owner), zap.Error(err))
		}
		return false
	}
	c.metrics.stolen.Inc()
	c.log.Info("leader: lease asked for, to balance the load", zap.String("lease", l.Key), zap.String("from", l.Owner), zap.String("to", to))
	return true
}

// take takes one lease and, on success, holds it and reports it. A
// retryable failure is retried within the pass. A take whose reply was lost
// fails its retry's condition; the lease is then re-read, and held if the
// counter is the one that take produced.
func (c *Coordinator) take(ctx context.Context, l Lease) {
	var (
		stored Lease
		start  time.Time // of the call that took it
	)
	l = c.pinLatest(l)
	var first time.Time
	unknown := false // an attempt failed without telling whether it took effect
	err := withRetry(ctx, c.retry, func() error {
		var err error
		start = c.now()
		if first.IsZero() {
			first = start
		}
		stored, err = c.cfg.Store.Take(ctx, l, c.cfg.WorkerID)
		if err != nil && ctx.Err() == nil {
			c.countStoreError("take", err)
		}
		if err != nil && !errors.Is(err, ErrConflict) {
			unknown = true
		}
		return err
	})
	if errors.Is(err, ErrConflict) && unknown {
		// An attempt whose reply was lost may have taken it: this worker
		// as the owner with the counter one past the one taken means so.
		if cur, gerr := c.get(ctx, l.Key); gerr == nil && cur.Owner == c.cfg.WorkerID && cur.Counter == l.Counter+1 && cur.CheckpointOwner == "" {
			stored, start, err = cur, first, nil
		}
	}
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrConflict) {
			c.log.Warn("taking lease failed", zap.String("lease", l.Key), zap.Error(err))
		}
		return
	}
	if l.CheckpointOwner != "" {
		c.metrics.handOverForced.Inc()
		c.log.Warn("lease taken without its hand-over: the holder did not hand it over within FailoverTime",
			zap.String("lease", l.Key), zap.String("holder", l.CheckpointOwner))
	}
	c.mu.Lock()
	stale := c.held[l.Key]
	c.mu.Unlock()
	if stale != nil {
		// Held here, yet taken from the table on a newer counter (the
		// leader assigning itself a lease an operator reset or released
		// under it): that holding is over, and its processing with it,
		// before the new one starts from the checkpoint now in the table.
		stale.mu.Lock()
		if !stale.gone && stale.lease.Counter < stored.Counter {
			c.loseLocked(stale, "taken again after another writer released it")
		}
		stale.mu.Unlock()
	}
	h := newHeldLease(stored, start)
	c.mu.Lock()
	if c.noTaking { // a graceful shutdown began meanwhile: hand it back at once
		c.mu.Unlock()
		h.mu.Lock()
		if err := c.releaseHeld(ctx, h); err != nil && ctx.Err() == nil {
			c.log.Warn("handing back a lease taken during shutdown failed; it expires after FailoverTime", zap.String("lease", l.Key), zap.Error(err))
		}
		h.mu.Unlock()
		return
	}
	c.held[l.Key] = h
	delete(c.duplicates, l.Key)
	n := len(c.held)
	c.mu.Unlock()
	c.metrics.held.Set(float64(n))
	c.metrics.taken.Inc()
	c.log.Info("lease taken", zap.String("lease", l.Key), zap.String("from", l.Owner))
	if c.cfg.OnAcquired != nil {
		cl, fn := stored.Clone(), c.cfg.OnAcquired
		c.events.push(func() { fn(cl) })
	}
}

// pinLatest returns l with LatestTimestamp set to now when it is a LATEST
// lease created without the time LATEST stands for: it is now, for every
// later holder too (Lease.LatestTimestamp). Every take writes it, the
// leader's on a worker's behalf included.
func (c *Coordinator) pinLatest(l Lease) Lease {
	if l.Checkpoint == string(checkpoint.Latest) && l.LatestTimestamp.IsZero() {
		l.LatestTimestamp = c.now()
	}
	return l
}
