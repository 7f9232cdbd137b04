package autoscale_test

import (
	"fmt"
	"time"

	"github.com/kinesisgo/kinesis/autoscale"
)

// A planner splits a shard above its target at the median of the hash keys
// sampled from its records, here a hot range low in the shard.
func ExamplePlanner_Decide() {
	p, err := autoscale.NewPlanner(autoscale.PlanConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	var sample []string
	for i := range 100 {
		sample = append(sample, fmt.Sprint(1000+i)) // hash keys 1000 to 1099
	}
	d := p.Decide(autoscale.Snapshot{Time: time.Now(), Status: "ACTIVE", Shards: []autoscale.ShardLoad{{
		ShardID: "shardId-000000000000", StartingHashKey: "0", EndingHashKey: "340282366920938463463374607431768211455",
		BytesPerSecond: 900 << 10, RecordsPerSecond: 400, Complete: true, Sample: sample,
	}}})
	fmt.Println(d.Action, d.Shard, "at", d.SplitAt, "by", d.SplitBy)
	// Output: split shardId-000000000000 at 1050 by median
}

// Scaler.Once makes one decision; with DryRun it only logs it.
func ExampleScaler_Once() {
	s, err := autoscale.New(autoscale.Config{Stream: "events", DryRun: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s // ev, err := s.Once(ctx): ev.Action, ev.Reason, ev.Shards
}
