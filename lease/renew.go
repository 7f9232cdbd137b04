package lease

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// renewPass renews every held lease once, MaxConcurrentWrites at a time.
func (c *Coordinator) renewPass(ctx context.Context) {
	c.mu.Lock()
	hs := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		hs = append(hs, h)
	}
	c.mu.Unlock()
	forEach(ctx, hs, c.cfg.MaxConcurrentWrites, func(h *heldLease) { c.renew(ctx, h) })
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

// renewAttempts is how many times one renewal pass tries a lease whose
// renewal failed with an error that may be transient.
const renewAttempts = 3

// renew renews one held lease. A failed condition is re-read before the
// lease is declared lost; other failures are retried a few times with a
// short backoff, and then at the next pass; a lease that could not be
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
	for try := 0; ; try++ {
		start := c.now()
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.RenewInterval) // never past the next pass
		stored, err := c.cfg.Store.Renew(callCtx, h.lease)
		cancel()
		c.metrics.renewLatency.Observe(c.now().Sub(start).Seconds())
		if err == nil {
			h.set(stored)
			h.lastRenewed = c.now()
			return
		}
		if ctx.Err() != nil {
			return
		}
		c.countStoreError("renew", err)
		if errors.Is(err, ErrConflict) {
			ours, rerr := c.recheck(ctx, h)
			switch {
			case rerr == nil && !ours:
				c.loseLocked(h, "renewal condition failed and another owner or none is recorded")
				return
			case rerr == nil && try+1 < renewAttempts:
				continue // adopted the counter of our own earlier write: renew on it
			case rerr != nil:
				err = rerr // cannot tell
			}
		}
		if c.now().Sub(h.lastRenewed) >= c.cfg.FailoverTime {
			c.loseLocked(h, "not renewed within FailoverTime")
			return
		}
		if try+1 >= renewAttempts || errors.Is(err, ErrConflict) || !sleep(ctx, c.backoff(try)) {
			c.log.Warn("lease renewal failed; will retry at the next pass", zap.String("lease", h.lease.Key), zap.Error(err))
			return
		}
	}
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// defaultBackoff is the pause before retry number try+1 of a call that
// failed with a possibly transient error: 50 ms, 100 ms, 200 ms, ...
func defaultBackoff(try int) time.Duration { return 50 * time.Millisecond << min(try, 5) }
