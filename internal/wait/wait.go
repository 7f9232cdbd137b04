// Package wait is the tests' one wait-for-condition helper: it polls a
// condition until it holds or a deadline passes, and fails the test then.
package wait

import (
	"testing"
	"time"
)

// Poll is how often For checks its condition.
const Poll = 10 * time.Millisecond

// For polls cond every Poll until it returns true and returns how long
// that took; after within it fails t with "timed out after D waiting for
// WHAT". It must be called from the test's goroutine.
func For(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(Poll)
	}
}

// Until is For without failing: it reports whether cond held within the
// deadline.
func Until(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Poll)
	}
}
