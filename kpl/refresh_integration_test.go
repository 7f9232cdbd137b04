package kpl_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl"
)

// TestIntegrationMissingStreamFailsRecords: records put to a stream that
// does not exist fail with ResourceNotFoundException promptly.
func TestIntegrationMissingStreamFailsRecords(t *testing.T) {
	client := testenv.KinesisClient(t)
	p := newProducer(t, client, testenv.UniqueName(t), kpl.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.PutSync(ctx, kpl.Record{PartitionKey: "k", Data: []byte("d")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("PutSync to a missing stream: err = %v, want ResourceNotFoundException", err)
	}
}

// TestIntegrationSplitDuringProduction splits the stream's only shard while
// records are being put, and checks that none is lost.
func TestIntegrationSplitDuringProduction(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{})
	direct := testenv.KinesisClient(t)
	stream := testenv.CreateStream(t, direct, 1)
	p := newProducer(t, testenv.KinesisClientAt(t, px.URL()), stream, kpl.Config{RecordMaxBufferedTime: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const n = 6000
	keyOf := func(i int) string { return fmt.Sprintf("user-%d", i%500) }
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	wg.Add(n)
	split := make(chan error, 1)
	for i := 0; i < n; i++ {
		if i == n/3 {
			go func() { split <- splitOnlyShard(ctx, direct, stream) }()
		}
		if i%200 == 0 {
			time.Sleep(10 * time.Millisecond) // spread production over the split
		}
		err := p.Put(ctx, kpl.Record{PartitionKey: keyOf(i), Data: payload(i)}, func(r kpl.Result) {
			defer wg.Done()
			if r.Err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, r.Err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-split; err != nil {
		t.Fatal(err)
	}
	// Put some more once the children are open, then flush.
	for i := 0; i < 10; i++ {
		if _, err := p.PutSync(ctx, kpl.Record{PartitionKey: keyOf(i), Data: payload(n + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d records failed, first: %v", failed.Load(), firstErr.Load())
	}
	users, shards := readAll(t, ctx, direct, stream)
	if len(shards) != 3 {
		t.Fatalf("%d shards after the split, want 3", len(shards))
	}
	checkExactlyOnce(t, users, n+10, func(i int) string { return keyOf(i % n) }, shards, false)
	perShard := map[string]int{}
	for _, u := range users {
		perShard[u.ShardID]++
	}
	t.Logf("user records per shard: %v", perShard)
}

func splitOnlyShard(ctx context.Context, c *kinesis.Client, stream string) error {
	out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return err
	}
	if len(out.Shards) != 1 {
		return errors.New("want one shard")
	}
	sh := out.Shards[0]
	rng, err := hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
	if err != nil {
		return err
	}
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: sh.ShardId,
		NewStartingHashKey: aws.String(hashkey.Mid(rng.Start, rng.End).String()),
	}); err != nil {
		return err
	}
	return testenv.WaitStreamActive(ctx, c, stream)
}
