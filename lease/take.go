package lease

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
)

// expiryLag is how long after a lease's expected expiry the extra taker pass
// scheduled for it runs.
const expiryLag = 10 * time.Millisecond

// takePass scans the table, takes the leases this worker's part of the
// balancing plan names (see balance.go), and returns when the next pass is
// due: after TakeInterval, or sooner when a lease seen owned by another
// worker will expire before that.
func (c *Coordinator) takePass(ctx context.Context) time.Time {
	next := c.now().Add(c.cfg.TakeInterval)
	leases, err := c.cfg.Store.List(ctx)
	c.metrics.takerPasses.Inc()
	if err != nil {
		if ctx.Err() == nil {
			c.countStoreError("list", err)
			c.log.Warn("taker pass: listing leases failed", zap.Error(err))
		}
		return next
	}
	now := c.now()
	me := c.cfg.WorkerID

	c.mu.Lock()
	var movedOn []Lease // held here, owned by another in the table
	seen := make(map[string]observation, len(leases))
	v := view{me: me, owned: make(map[string][]Lease), byCount: c.cfg.BalanceByCount}
	var reacquire, longFree, forced []Lease
	unfinished := 0
	pending := 0 // hand-overs to this worker in progress
	for _, l := range leases {
		o, ok := c.seen[l.Key]
		if !ok || o.counter != l.Counter || o.owner != l.Owner {
			o = observation{counter: l.Counter, owner: l.Owner, since: now}
		}
		held := c.held[l.Key] != nil
		if l.Owner != me && held {
			movedOn = append(movedOn, l)
		}
		// Owned by this ID, but lost to another process running with it:
		// that process's lease, expiring as another worker's would.
		dup := l.Owner == me && !held && c.duplicates[l.Key]
		if l.Finished() {
			o.freeRun = 0
			seen[l.Key] = o
			continue
		}
		unfinished++
		expired := l.Owner != "" && (l.Owner != me || dup) && now.Sub(o.since) >= c.cfg.FailoverTime
		switch {
		case l.Owner == "" || expired:
			o.freeRun++
			v.free = append(v.free, l)
			if o.freeRun >= 3 {
				longFree = append(longFree, l)
			}
		case l.Owner == me:
			o.freeRun = 0
			v.owned[me] = append(v.owned[me], l) // as the other workers see it
			switch {
			case dup:
				if exp := o.since.Add(c.cfg.FailoverTime + expiryLag); exp.Before(next) {
					next = exp
				}
			case !held && l.CheckpointOwner != "":
				// Handed over to this worker: the holder finishes and
				// releases it; one that does not within FailoverTime (its
				// counter still) has it taken.
				pending++
				if now.Sub(o.since) >= c.cfg.FailoverTime {
					forced = append(forced, l)
				} else if exp := o.since.Add(c.cfg.FailoverTime + expiryLag); exp.Before(next) {
					next = exp
				}
			case !held:
				reacquire = append(reacquire, l) // ours in the table: handed over to us, or from an earlier run
			}
		default:
			o.freeRun = 0
			v.owned[l.Owner] = append(v.owned[l.Owner], l)
			if exp := o.since.Add(c.cfg.FailoverTime + expiryLag); exp.Before(next) {
				next = exp
			}
		}
		seen[l.Key] = o
	}
	c.seen = seen
	noTaking := c.noTaking
	c.mu.Unlock()
	c.metrics.leasesInTable.Set(float64(unfinished))
	c.dropMovedOn(ctx, movedOn)
	if noTaking {
		return next
	}
	c.mu.Lock()
	heldNow := len(c.held)
	c.mu.Unlock()

	for w := range v.owned {
		v.workers = append(v.workers, w)
	}
	if _, ok := v.owned[me]; !ok {
		v.workers = append(v.workers, me)
	}
	slices.Sort(v.workers)
	planned := v.plan()
	take := append(append(reacquire, forced...), planned...)
	for _, l := range longFree { // free for three scans: whoever the plan named is not taking it
		if !slices.ContainsFunc(take, func(t Lease) bool { return t.Key == l.Key }) {
			take = append(take, l)
		}
	}
	if limit := c.cfg.MaxLeasesForWorker; limit > 0 {
		room := max(0, limit-heldNow-pending+len(forced))
		take = take[:min(len(take), room)]
	}
	c.takeAll(ctx, take, v)
	return next
}

// dropMovedOn reports lost the held leases a scan saw with another owner
// (or none) and a counter past the one held: someone else wrote them since,
// so this worker's next renewal would fail anyway.
func (c *Coordinator) dropMovedOn(ctx context.Context, ls []Lease) {
	for _, l := range ls {
		h := c.heldLease(l.Key)
		if h == nil {
			continue
		}
		h.mu.Lock()
		switch {
		case h.gone || h.handingOver || l.Counter <= h.lease.Counter || l.Owner == c.cfg.WorkerID:
		case l.CheckpointOwner == c.cfg.WorkerID:
			c.handOverAskedLocked(ctx, h, l)
		default:
			c.loseLocked(h, "taker pass saw another owner")
		}
		h.mu.Unlock()
	}
}

// takeAll takes the given leases concurrently.
func (c *Coordinator) takeAll(ctx context.Context, take []Lease, v view) {
	forEach(ctx, take, c.cfg.MaxConcurrentWrites, func(l Lease) {
		live := l.Owner != "" && l.Owner != v.me && slices.ContainsFunc(v.owned[l.Owner], func(o Lease) bool { return o.Key == l.Key })
		switch {
		case live && l.CheckpointOwner == v.me:
			// This worker is finishing it for another: it may move back
			// once that one holds it.
		case live: // a hand-over in progress is redirected
			c.askHandOver(ctx, l)
		default:
			c.take(ctx, l)
		}
	})
}

// askHandOver asks the live worker holding l to hand it over to this one
// (Store.HandOver): that worker finishes its batch, checkpoints and
// releases the lease to this worker, which takes it up at a later pass, so
// a move to balance the load delivers no record twice. A hand-over already
// in progress to another worker is redirected to this one (never taken
// from its holder's hands). A holder that does not finish within
// FailoverTime has the lease taken.
func (c *Coordinator) askHandOver(ctx context.Context, l Lease) {
	err := withRetry(ctx, c.retry, func() error {
		_, err := c.cfg.Store.HandOver(ctx, l, c.cfg.WorkerID)
		if err != nil && ctx.Err() == nil {
			c.countStoreError("hand_over", err)
		}
		return err
	})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrConflict) {
			c.log.Warn("asking for a lease failed", zap.String("lease", l.Key), zap.String("from", l.Owner), zap.Error(err))
		}
		return
	}
	c.metrics.stolen.Inc()
	c.log.Info("lease asked for, to balance the load", zap.String("lease", l.Key), zap.String("from", l.Owner))
}

// take takes one lease and, on success, holds it and reports it. A
// retryable failure is retried within the pass. A take whose reply was lost
// fails its retry's condition; the next pass finds the lease owned by this
// worker in the table and holds it then.
func (c *Coordinator) take(ctx context.Context, l Lease) {
	var (
		stored Lease
		start  time.Time // of the call that took it
	)
	if l.Checkpoint == string(checkpoint.Latest) && l.LatestTimestamp.IsZero() {
		// Created without the time LATEST stands for: it is now, for
		// every later holder too (Lease.LatestTimestamp).
		l.LatestTimestamp = c.now()
	}
	err := withRetry(ctx, c.retry, func() error {
		var err error
		start = c.now()
		stored, err = c.cfg.Store.Take(ctx, l, c.cfg.WorkerID)
		if err != nil && ctx.Err() == nil {
			c.countStoreError("take", err)
		}
		return err
	})
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
