package lease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/backoff"
)

// heartbeat writes this worker's item in the worker metrics table: its
// heartbeat count, the leases it holds and their measured throughput.
func (c *Coordinator) heartbeat(ctx context.Context) {
	c.mu.Lock()
	keys := make([]string, 0, len(c.held))
	for k := range c.held {
		keys = append(keys, k)
	}
	leaving := c.noTaking
	c.mu.Unlock()
	w := WorkerState{ID: c.cfg.WorkerID, Leases: len(keys), MaxLeases: c.cfg.MaxLeasesForWorker, Leaving: leaving, Updated: c.now()}
	if c.cfg.Throughput != nil {
		for _, k := range keys {
			if kbps, ok := c.cfg.Throughput(k); ok {
				w.ThroughputKBps += kbps
			}
		}
	}
	if err := c.cfg.Store.Heartbeat(ctx, w); err != nil && ctx.Err() == nil {
		c.metrics.heartbeatErrors.Inc()
		c.countStoreError("heartbeat", err)
		c.log.Warn("heartbeat failed", zap.Error(err))
	}
}

func (c *Coordinator) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noTaking
}

// receivers are the workers a worker shutting down hands its leases to:
// the live ones the leader names, fewest leases first.
type receivers struct {
	counts map[string]int
}

// pick returns the receiver with the fewest leases, counting the one
// handed to it, or "" when there is none.
func (r *receivers) pick() string {
	best := ""
	for _, id := range slices.Sorted(maps.Keys(r.counts)) {
		if best == "" || r.counts[id] < r.counts[best] {
			best = id
		}
	}
	if best != "" {
		r.counts[best]++
	}
	return best
}

// receiver returns the worker to hand a lease to on shutdown, or "" when
// there is none (then the lease is released for the leader to assign).
// The first call tells the leader this worker is leaving (a heartbeat),
// and reads who is live: the leader item names the live workers, the
// worker metrics their loads and caps.
func (c *Coordinator) receiver(ctx context.Context) string {
	c.mu.Lock()
	r := c.leaving
	c.mu.Unlock()
	if r == nil {
		r = &receivers{counts: map[string]int{}}
		c.heartbeat(ctx)
		var (
			live []string
			ws   []WorkerState
			err  error
		)
		c.pollMu.Lock()
		if c.poll.leading {
			// Fresh heartbeats: a worker that left since the last check
			// must not be handed anything.
			if _, ok := c.readWorkers(ctx); ok {
				live = c.poll.lp.live
				for _, o := range c.poll.lp.workers {
					ws = append(ws, o.state)
				}
			}
		}
		c.pollMu.Unlock()
		if ws == nil {
			var st LeaderState
			if st, err = c.cfg.Store.Leader(ctx); err == nil {
				live = st.Live
				ws, err = c.cfg.Store.Workers(ctx)
			}
		}
		if err == nil {
			for _, w := range ws {
				if w.ID != c.cfg.WorkerID && !w.Leaving && slices.Contains(live, w.ID) && (w.MaxLeases == 0 || w.Leases < w.MaxLeases) {
					r.counts[w.ID] = w.Leases
				}
			}
		}
		c.mu.Lock()
		if c.leaving == nil {
			c.leaving = r
		}
		r = c.leaving
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.pick()
}

// transferHeld makes worker to the owner of a held lease, for a worker
// shutting down after its last checkpoint: a take on to's behalf,
// conditional on the held counter, and a notice to it. A failed condition
// is re-read: to as the owner with the counter a write of ours whose reply
// was lost would have produced means it took effect. h.mu is held.
func (c *Coordinator) transferHeld(ctx context.Context, h *heldLease, to string) error {
	for try := 1; ; try++ {
		start := c.now()
		_, err := c.cfg.Store.Take(ctx, h.lease, to)
		if err == nil {
			break
		}
		h.failed(err, start)
		c.countStoreError("transfer", err)
		if errors.Is(err, ErrConflict) {
			cur, gerr := c.get(ctx, h.lease.Key)
			if gerr == nil && cur.Owner == to && h.ownWrite(cur) {
				break
			}
			return err
		}
		if try >= storeAttempts || !retryable(err) || backoff.Sleep(ctx, c.retry.Delay(try)) != nil {
			return err
		}
	}
	c.notify(ctx, []string{to}, false)
	return nil
}

// notify adds one to the notice count of each worker given (and asks for
// an assignment pass when request is set), retrying a retryable failure;
// notices that still fail are sent again at the next poll pass (a worker
// that misses one would not look up its leases).
func (c *Coordinator) notify(ctx context.Context, workers []string, request bool) {
	err := withRetry(ctx, c.retry, func() error {
		err := c.cfg.Store.Notify(ctx, workers, request)
		if err != nil && ctx.Err() == nil {
			c.countStoreError("notify", err)
		}
		return err
	})
	if err == nil {
		return
	}
	c.log.Warn("notifying workers failed; retrying at the next pass", zap.Strings("workers", workers), zap.Error(err))
	c.unsentMu.Lock()
	c.unsent = append(c.unsent, workers...)
	c.unsentMu.Unlock()
	if request {
		c.requested.Store(true)
	}
}

// leave ends this worker's part in the fleet when Run returns: it removes
// its worker metrics item when it holds no lease. A worker stopped with
// leases still held (an abort) keeps its item, so that the leader sees its
// heartbeat stop and assigns them, and keeps the leader item, which
// expires; ReleaseAll gives both up at once.
func (c *Coordinator) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.mu.Lock()
	n := len(c.held)
	c.mu.Unlock()
	if n == 0 {
		if err := c.cfg.Store.RemoveWorker(ctx, c.cfg.WorkerID); err != nil {
			c.log.Info("removing this worker's metrics item failed; the leader removes it", zap.Error(err))
		}
	}
}

// resign gives up leading, if this worker leads: the leader item is
// released, so that another worker leads at its next poll pass.
func (c *Coordinator) resign(ctx context.Context) {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if !c.poll.leading {
		return
	}
	if err := c.cfg.Store.ReleaseLeader(ctx, c.poll.lead); err != nil {
		c.log.Info("releasing the leader item failed; another worker leads once it expires", zap.Error(err))
	}
	c.stopLeading("stopped")
}

// passOnUnheld hands on (or releases) the leases the table names this
// worker as the owner of that it does not hold: assigned or handed to it
// while it was shutting down, before it took them up. Leases still being
// finished by their holder for this worker are left to the holder and the
// leader.
func (c *Coordinator) passOnUnheld(ctx context.Context) error {
	keys, err := c.cfg.Store.Owned(ctx, c.cfg.WorkerID)
	if err != nil {
		return fmt.Errorf("look up leases assigned during shutdown: %w", err)
	}
	var errs []error
	for _, k := range keys {
		c.mu.Lock()
		held := c.held[k] != nil || c.duplicates[k]
		c.mu.Unlock()
		if held {
			continue
		}
		l, err := c.get(ctx, k)
		if err != nil || l.Owner != c.cfg.WorkerID || l.CheckpointOwner != "" || l.Finished() {
			continue
		}
		h := newHeldLease(l, c.now())
		h.mu.Lock()
		if to := c.receiver(ctx); to != "" {
			err = c.transferHeld(ctx, h, to)
		} else {
			err = c.releaseHeld(ctx, h)
			if err == nil {
				c.requested.Store(true)
			}
		}
		h.mu.Unlock()
		if err != nil && !errors.Is(err, ErrConflict) {
			errs = append(errs, fmt.Errorf("release lease %q: %w", k, err))
		}
	}
	return errors.Join(errs...)
}
