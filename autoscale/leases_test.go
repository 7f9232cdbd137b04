package autoscale

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

// noMetrics is a CloudWatch without datapoints: shard-level metrics not
// enabled.
type noMetrics struct{}

func (noMetrics) GetMetricData(context.Context, *cloudwatch.GetMetricDataInput, ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	return &cloudwatch.GetMetricDataOutput{}, nil
}

// twoShards is a Kinesis stream of two open shards that records splits.
type twoShards struct {
	KinesisAPI // calls not made here panic
	split      *kinesis.SplitShardInput
}

func (k *twoShards) DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &kintypes.StreamDescriptionSummary{StreamStatus: kintypes.StreamStatusActive}}, nil
}

func (k *twoShards) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	shard := func(id, start, end string) kintypes.Shard {
		return kintypes.Shard{ShardId: aws.String(id), HashKeyRange: &kintypes.HashKeyRange{StartingHashKey: aws.String(start), EndingHashKey: aws.String(end)},
			SequenceNumberRange: &kintypes.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
	}
	return &kinesis.ListShardsOutput{Shards: []kintypes.Shard{shard("shardId-000000000000", lowHalf[0], lowHalf[1]), shard("shardId-000000000001", highHalf[0], highHalf[1])}}, nil
}

func (k *twoShards) SplitShard(_ context.Context, in *kinesis.SplitShardInput, _ ...func(*kinesis.Options)) (*kinesis.SplitShardOutput, error) {
	k.split = in
	return &kinesis.SplitShardOutput{}, nil
}

// Without CloudWatch metrics, a kcl application's measured read rate per
// lease is the traffic: a held, measured lease above the target is split
// (at the midpoint: no sample was asked for), one not held is left alone.
func TestLeaseThroughputAsASecondSource(t *testing.T) {
	ctx := context.Background()
	store := lease.NewMemoryStore()
	for _, l := range []lease.Lease{
		{Key: "shardId-000000000000", Owner: "w1", Checkpoint: string(checkpoint.TrimHorizon), ThroughputKBps: 900, ThroughputKnown: true},
		{Key: "shardId-000000000001", Checkpoint: string(checkpoint.TrimHorizon), ThroughputKBps: 950, ThroughputKnown: true},
	} {
		if _, err := store.Create(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	k := &twoShards{}
	s, err := New(Config{Stream: "events", Kinesis: k, CloudWatch: noMetrics{}, Leases: store, SampleRecords: -1})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action != Split || ev.Shard != "shardId-000000000000" || ev.SplitBy != "midpoint" || !ev.Acted || k.split == nil {
		t.Fatalf("evaluation %+v, want a split of shard 0 at the midpoint", ev)
	}
	if u := ev.Shards[0]; u.Source != SourceLeases || u.BytesPerSecond != 900*1024 || !u.Complete {
		t.Errorf("shard 0: %+v, want 900 KiB/s from the leases", u)
	}
	if u := ev.Shards[1]; u.Complete || u.Source != SourceCloudWatch {
		t.Errorf("shard 1, its lease not held: %+v, want incomplete CloudWatch metrics", u)
	}
}
