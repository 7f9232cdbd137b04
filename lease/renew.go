package lease

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/backoff"
)

// renewPass renews every held lease once, MaxConcurrentWrites at a time,
// and then writes this worker's heartbeat.
func (c *Coordinator) renewPass(ctx context.Context) {
	c.mu.Lock()
	hs := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		hs = append(hs, h)
	}
	c.mu.Unlock()
	forEach(ctx, hs, c.cfg.MaxConcurrentWrites, func(h *heldLease) { c.renew(ctx, h) })
	c.heartbeat(ctx)
}

// forEach calls fn for each item on at most n goroutines, and returns when
// all calls have. Items not started when ctx ends are skipped.
func forEach[T any](ctx context.Context, items []T, n int, fn func(T)) {
	if len(items) == 0 {
		return
	}
	next := make(chan T)
	var wg sync.WaitGroup
	for range min(n, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				fn(it)
			}
		}()
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		next <- it
	}
	close(next)
	wg.Wait()
}

// renew renews one held lease. A failed condition is re-read before the
// lease is declared lost: when an earlier attempt failed without telling
// whether it took effect (its reply was lost) and the counter read is the
// one it would have produced, that attempt renewed the lease (see recheck);
// any other counter was written by someone else, and the lease is lost even
// if the owner recorded is this WorkerID. A retryable failure is retried
// within the pass (storeAttempts tries with backoff), and then at the next
// pass; a fatal one waits for the next pass. A lease that could not be
// renewed for FailoverTime is dropped, since others may have taken it
// meanwhile.
//
// A lease with a write in flight (a checkpoint, a release) is left to that
// write, which moves its counter as a renewal would: waiting for it would
// hold up the whole pass, and so the renewal of every other lease, for as
// long as that call hangs.
func (c *Coordinator) renew(ctx context.Context, h *heldLease) {
	if !h.mu.TryLock() {
		return
	}
	defer h.mu.Unlock()
	if h.gone {
		return
	}
	if h.handingOver {
		// Not renewed: the next owner waits for the release, or for its
		// counter to stand still for FailoverTime, and then takes it.
		switch {
		case c.now().Sub(h.lastRenewed) >= c.cfg.FailoverTime:
			c.loseLocked(h, "hand-over not finished within FailoverTime; the next owner takes it")
		case c.cfg.OnHandOver == nil:
			_ = c.releaseLocked(ctx, h) // an earlier attempt failed: hand it over now
		}
		return
	}
	for try := 1; ; try++ {
		start := c.now()
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.RenewInterval) // never past the next pass
		l := h.lease
		if c.cfg.Throughput != nil {
			if kbps, ok := c.cfg.Throughput(l.Key); ok {
				l.ThroughputKBps, l.ThroughputKnown = kbps, true
			}
		}
		stored, err := c.cfg.Store.Renew(callCtx, l)
		cancel()
		c.metrics.renewLatency.Observe(c.now().Sub(start).Seconds())
		if err == nil {
			h.written(stored, start)
			return
		}
		h.failed(err, start)
		if ctx.Err() != nil {
			return
		}
		c.countStoreError("renew", err)
		if errors.Is(err, ErrConflict) {
			ours, rerr := c.recheck(ctx, h)
			switch {
			case rerr == nil && !ours:
				c.loseLocked(h, "renewal condition failed and the lease moved on without a write of ours")
				return
			case rerr == nil:
				return // an earlier attempt renewed it: the counter others watch moved
			default:
				err = rerr // cannot tell: retry the renewal if the read may pass
			}
		}
		if c.now().Sub(h.lastRenewed) >= c.cfg.FailoverTime {
			c.loseLocked(h, "not renewed within FailoverTime")
			return
		}
		if try >= storeAttempts || !retryable(err) || backoff.Sleep(ctx, c.retry.Delay(try)) != nil {
			c.log.Warn("lease renewal failed; will retry at the next pass", zap.String("lease", h.lease.Key), zap.Error(err))
			return
		}
	}
}
