package checkpoint_test

import (
	"fmt"

	"github.com/kinesisgo/kinesis/checkpoint"
)

func Example() {
	// The user record at index 2 of an aggregated record, and the next
	// record of the shard.
	a, _ := checkpoint.Parse("49590338271490256608559692538361571095921575989136588801", 2)
	b, _ := checkpoint.Parse("49590338271490256608559692538361571095921575989136588802", 0)
	fmt.Println(a, a.Compare(b))
	fmt.Println(checkpoint.TrimHorizon.SequenceNumber().Compare(a), checkpoint.ShardEnd.SequenceNumber().Compare(b))
	if _, err := checkpoint.Parse("SHARD_END", 1); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 49590338271490256608559692538361571095921575989136588801/2 -1
	// -1 1
	// checkpoint: invalid sequence number: position SHARD_END with sub-sequence number 1
}
