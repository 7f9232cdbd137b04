package lease

import (
	"context"
	"errors"
	"time"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
)

// Retries of lease table calls.
//
// A Store makes each call once (a DynamoDB client used by this package may
// have the SDK's own retries turned off). The coordinator and the shard
// syncer retry a failed call a few times within the pass that made it,
// with full-jitter backoff, when it failed with an error that may pass on
// another attempt (see retryable); what still fails is made again at the
// next pass. A conditional write whose reply was lost fails the condition
// on its retry: the callers re-read the lease to tell a write of their own
// from another worker's.

// storeAttempts is how many times one pass makes a lease table call that
// keeps failing with a retryable error.
const storeAttempts = 3

// storeBackoff spaces the attempts: a random wait up to 50 ms after the
// first failure, up to 100 ms after the second.
var storeBackoff = backoff.Policy{Base: 50 * time.Millisecond, Max: time.Second}

// retryable reports whether a failed store call may succeed if made again.
// A failed condition, a missing or existing lease and a malformed item fail
// the same way again (the caller decides what they mean); other errors are
// classified by awserr (throttling and transient faults are retryable).
func retryable(err error) bool {
	switch {
	case err == nil, errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound),
		errors.Is(err, ErrExists), errors.Is(err, ErrMalformed):
		return false
	}
	return awserr.IsRetryable(err)
}

// withRetry calls fn until it succeeds or fails with an error that is not
// retryable, at most storeAttempts times, waiting p.Delay(n) after the n-th
// failure. It returns fn's last error (also when ctx ended during a wait).
func withRetry(ctx context.Context, p backoff.Policy, fn func() error) error {
	for n := 1; ; n++ {
		err := fn()
		if err == nil || n >= storeAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if backoff.Sleep(ctx, p.Delay(n)) != nil {
			return err
		}
	}
}
