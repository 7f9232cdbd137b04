package leasetest_test

import (
	"testing"

	"github.com/kinesisgo/kinesis/lease"
	"github.com/kinesisgo/kinesis/lease/leasetest"
)

// TestMemoryStore is how the package that implements a store runs the
// suite, here over lease.MemoryStore: newStore returns a store on an
// empty, ready table for each subtest (a store backed by a server would
// create a table named after t.Name() and drop it with t.Cleanup).
func TestMemoryStore(t *testing.T) {
	leasetest.TestStore(t, func(t *testing.T) lease.Store {
		return lease.NewMemoryStore()
	})
}
