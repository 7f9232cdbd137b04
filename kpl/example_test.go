package kpl_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/kinesisgo/kinesis/kinesistest"
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

func ExampleProducer_PutSync() {
	// An in-memory stream of one shard, so that the example runs without
	// AWS.
	stream, err := kinesistest.New(kinesistest.Config{StreamName: "events"})
	if err != nil {
		log.Fatal(err)
	}
	p, err := kpl.New(kpl.Config{Stream: "events", Kinesis: stream})
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
	// shardId-000000000000 49000000000000000000000000000000000000010000000000000000 <nil>
	// true kpl: invalid record: partition key is empty
}
