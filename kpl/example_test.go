package kpl_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/kpl"
)

func Example() {
	p, err := kpl.New(kpl.Config{Stream: "events"}) // AWS config chain, KPL defaults
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil { // flushes, then fails what is left
			log.Print(err)
		}
	}()

	ctx := context.Background()
	err = p.Put(ctx, kpl.Record{PartitionKey: "user-42", Data: []byte(`{"clicked":true}`)}, func(r kpl.Result) {
		if r.Err != nil {
			log.Printf("record lost: %v", r.Err)
			return
		}
		fmt.Println("written to", r.ShardID, r.SequenceNumber)
	})
	if err != nil {
		log.Print(err) // invalid record, closed producer, or ctx ended while the buffer was full
	}
}

// oneShardStream is a stand-in for Kinesis holding one shard, so that the
// example runs without AWS.
type oneShardStream struct {
	mu      sync.Mutex
	records int
}

func (s *oneShardStream) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: []types.Shard{{
		ShardId: aws.String("shardId-000000000000"),
		HashKeyRange: &types.HashKeyRange{
			StartingHashKey: aws.String("0"),
			EndingHashKey:   aws.String("340282366920938463463374607431768211455"),
		},
	}}}, nil
}

func (s *oneShardStream) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &kinesis.PutRecordsOutput{}
	for range in.Records {
		s.records++
		out.Records = append(out.Records, types.PutRecordsResultEntry{
			ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String(fmt.Sprint(s.records)),
		})
	}
	return out, nil
}

func ExampleProducer_PutSync() {
	p, err := kpl.New(kpl.Config{Stream: "events", Kinesis: &oneShardStream{}})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	r, err := p.PutSync(context.Background(), kpl.Record{PartitionKey: "user-42", Data: []byte("hello")})
	fmt.Println(r.ShardID, r.SequenceNumber, err)

	// Invalid records are refused at once, with the reason.
	err = p.Put(context.Background(), kpl.Record{PartitionKey: "", Data: []byte("x")}, nil)
	fmt.Println(errors.Is(err, kpl.ErrInvalidRecord), err)
	// Output:
	// shardId-000000000000 1 <nil>
	// true kpl: invalid record: partition key is empty
}
