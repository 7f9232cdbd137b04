package kinesistest_test

import (
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/kpl"
	"github.com/kinesisgo/kinesis/lease"
)

// The stream stands in for the Kinesis client of the producer, the
// consumer and the lease layer's shard sync.
var (
	_ kpl.KinesisAPI   = (*kinesistest.Stream)(nil)
	_ kcl.KinesisAPI   = (*kinesistest.Stream)(nil)
	_ lease.KinesisAPI = (*kinesistest.Stream)(nil)
)
