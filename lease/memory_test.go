package lease_test

import (
	"testing"

	"github.com/kinesisgo/kinesis/lease"
	"github.com/kinesisgo/kinesis/lease/leasetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	leasetest.TestStore(t, func(*testing.T) lease.Store { return lease.NewMemoryStore() })
}
