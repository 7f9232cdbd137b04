package lanes_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kcl/lanes"
	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/lease"
)

// A worker whose shards are handled by 4 lanes each, in batches of up to
// 100 records gathered for at most 50 ms; a record failing 3 retries goes
// to a JSON-lines file. The in-memory stream and lease store stand in for
// Kinesis and DynamoDB.
func Example() {
	stream, _ := kinesistest.New(kinesistest.Config{StreamName: "events", Shards: 1})
	for i := range 6 {
		_, _, _ = stream.Put(fmt.Sprintf("user-%d", i%3), []byte(fmt.Sprintf("event %d", i)))
	}
	dir, _ := os.MkdirTemp("", "lanes")
	defer os.RemoveAll(dir)
	dest, err := lanes.OpenFile(filepath.Join(dir, "failed.jsonl"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dest.Close()

	var mu sync.Mutex
	handled := 0
	all := make(chan struct{})
	f, err := lanes.New(lanes.Config{
		Parallelism: 4, BatchSize: 100, BatchWindow: 50 * time.Millisecond,
		MaxRetries: 3, Destination: dest,
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			handled += len(b.Records) // the records of a key come in order
			if handled == 6 {
				close(all)
			}
			return nil
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := kcl.New(kcl.Config{
		Stream: "events", App: "billing", InitialPosition: checkpoint.TrimHorizon,
		Kinesis: stream, LeaseStore: lease.NewMemoryStore(),
		NewProcessor: f.NewProcessor,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	<-all
	cancel() // a graceful shutdown: the lanes drain and the watermark is checkpointed
	fmt.Println("handled", handled, "records; Run:", <-done)
	// Output: handled 6 records; Run: <nil>
}

// A Handler that stores records one by one reports how far it got: the
// records before the failed one are not handed to it again.
func ExampleFailedFrom() {
	store := func(r kcl.Record) error {
		if string(r.Data) == "bad" {
			return fmt.Errorf("cannot store %q", r.Data)
		}
		return nil
	}
	h := lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
		for i, r := range b.Records {
			if err := store(r); err != nil {
				return lanes.FailedFrom(i, err)
			}
		}
		return nil
	})
	err := h.Handle(context.Background(), &lanes.Batch{Records: []kcl.Record{{Data: []byte("ok")}, {Data: []byte("bad")}}})
	var partial *lanes.BatchItemFailure
	if errors.As(err, &partial) {
		fmt.Println("processed", partial.Index, "record; then:", partial.Err)
	}
	// Output: processed 1 record; then: cannot store "bad"
}
