package lease

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/zap"
)

// renewPass renews every held lease once, MaxConcurrentRenewals at a time.
func (c *Coordinator) renewPass(ctx context.Context) {
	c.mu.Lock()
	hs := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		hs = append(hs, h)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, c.cfg.MaxConcurrentRenewals)
	for _, h := range hs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.renew(ctx, h)
		}()
	}
	wg.Wait()
}

// renew renews one held lease. A failed condition is re-read before the
// lease is declared lost; a lease that could not be renewed for
// FailoverTime is dropped, since others may have taken it meanwhile.
func (c *Coordinator) renew(ctx context.Context, h *heldLease) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return
	}
	start := c.now()
	stored, err := c.cfg.Store.Renew(ctx, h.lease)
	c.metrics.renewLatency.Observe(c.now().Sub(start).Seconds())
	if err == nil {
		h.lease, h.lastRenewed = stored, c.now()
		return
	}
	if ctx.Err() != nil {
		return
	}
	c.countStoreError("renew", err)
	if errors.Is(err, ErrConflict) {
		if !c.recheck(ctx, h) {
			c.loseLocked(h, "renewal condition failed and another owner or none is recorded")
			return
		}
		stored, err = c.cfg.Store.Renew(ctx, h.lease)
		if err == nil {
			h.lease, h.lastRenewed = stored, c.now()
			return
		}
		c.countStoreError("renew", err)
		if errors.Is(err, ErrConflict) {
			c.loseLocked(h, "renewal condition failed twice")
			return
		}
	}
	if c.now().Sub(h.lastRenewed) >= c.cfg.FailoverTime {
		c.loseLocked(h, "not renewed within FailoverTime")
		return
	}
	c.log.Warn("lease renewal failed; will retry", zap.String("lease", h.lease.Key), zap.Error(err))
}
