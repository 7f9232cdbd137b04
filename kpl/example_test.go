package kpl_test

import (
	"context"
	"fmt"
	"log"
	"time"

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
