package kpl_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/kpl"
)

// TestIntegrationNonCanonicalHashKeyRejectedAtPut: Kinesis refuses a whole
// PutRecords request when one entry's ExplicitHashKey has leading zeros, so
// Put must refuse such a record and the records sharing its request must
// still be written.
func TestIntegrationNonCanonicalHashKeyRejectedAtPut(t *testing.T) {
	client, stream := testenv.NewStream(t, 1)
	p := newProducer(t, client, stream, kpl.Config{DisableAggregation: true, RecordMaxBufferedTime: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := make(chan kpl.Result, 1)
	if err := p.Put(ctx, kpl.Record{PartitionKey: "k", Data: []byte("good")}, func(r kpl.Result) { good <- r }); err != nil {
		t.Fatal(err)
	}
	bad := make(chan kpl.Result, 1)
	err := p.Put(ctx, kpl.Record{PartitionKey: "k", ExplicitHashKey: "007", Data: []byte("bad")}, func(r kpl.Result) { bad <- r })
	if !errors.Is(err, kpl.ErrInvalidRecord) {
		t.Errorf("Put with ExplicitHashKey 007: err = %v, want ErrInvalidRecord", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-good; r.Err != nil {
		t.Fatalf("valid record sharing a request with the bad one failed: %v", r.Err)
	}
}

// TestIntegrationPartitionKeyCountedInUTF16Units: Kinesis refuses a whole
// PutRecords request when one entry's partition key is over 256 UTF-16 code
// units (256 characters outside the Basic Multilingual Plane are 512), so
// Put must refuse such a key and the records sharing its request must still
// be written.
func TestIntegrationPartitionKeyCountedInUTF16Units(t *testing.T) {
	client, stream := testenv.NewStream(t, 1)
	p := newProducer(t, client, stream, kpl.Config{DisableAggregation: true, RecordMaxBufferedTime: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := make(chan kpl.Result, 2)
	for _, pk := range []string{"k", strings.Repeat("😀", 128)} {
		if err := p.Put(ctx, kpl.Record{PartitionKey: pk, Data: []byte("good")}, func(r kpl.Result) { good <- r }); err != nil {
			t.Fatal(err)
		}
	}
	err := p.Put(ctx, kpl.Record{PartitionKey: strings.Repeat("😀", 256), Data: []byte("bad")}, func(kpl.Result) {})
	if !errors.Is(err, kpl.ErrInvalidRecord) {
		t.Errorf("Put with 256 astral characters: err = %v, want ErrInvalidRecord", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := <-good; r.Err != nil {
			t.Fatalf("valid record sharing a request with the bad one failed: %v", r.Err)
		}
	}
}
