// Package backoff is the one retry delay of the module: exponential with
// full jitter (a uniformly random wait between zero and a ceiling that
// doubles with each consecutive failure, up to a cap), and a sleep that
// ends early when its context does.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff with full jitter.
type Policy struct {
	// Base is the ceiling of the wait after the first failure.
	Base time.Duration
	// Max caps the ceiling.
	Max time.Duration
	// Min is a floor added below the jittered wait, so that a retry never
	// comes at once (0: none).
	Min time.Duration
}

// Ceiling returns the largest wait after the attempt-th consecutive
// failure (1 for the first): Base·2^(attempt-1), capped at Max.
func (p Policy) Ceiling(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	c := p.Base
	for i := 1; i < attempt && c < p.Max; i++ {
		c *= 2
	}
	if p.Max > 0 && c > p.Max {
		c = p.Max
	}
	return max(c, 0)
}

// Delay returns a random wait in [Min, Min+Ceiling(attempt)].
func (p Policy) Delay(attempt int) time.Duration {
	c := p.Ceiling(attempt)
	if c <= 0 {
		return p.Min
	}
	return p.Min + rand.N(c+1)
}

// Sleep waits for d or until ctx ends, and returns ctx.Err() in the latter
// case (also when ctx has ended before the call). A wait of zero or less
// returns at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Wait sleeps for Delay(attempt); see Sleep.
func (p Policy) Wait(ctx context.Context, attempt int) error {
	return Sleep(ctx, p.Delay(attempt))
}
