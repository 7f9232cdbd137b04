package kpl

import (
	"context"
	"testing"
)

// MaxRecordSize is documented to go up to 10 MiB for streams whose maximum
// record size was raised; Kinesis then takes requests as large as the record
// (10 MiB), so a record over 5 MiB must be accepted and sent.
func TestRecordsOverFiveMiB(t *testing.T) {
	const size = 6 << 20
	if err := (Config{Stream: "s", MaxRecordSize: size}).Validate(); err != nil {
		t.Fatalf("Validate with MaxRecordSize %d: %v", size, err)
	}
	if err := (Config{Stream: "s", MaxRecordSize: size, CollectionMaxSize: size + 1}).Validate(); err == nil {
		t.Fatal("Validate accepted CollectionMaxSize above MaxRecordSize over 5 MiB")
	}
	if err := (Config{Stream: "s", CollectionMaxSize: MaxRequestSize + 1}).Validate(); err == nil {
		t.Fatal("Validate accepted CollectionMaxSize above 5 MiB with the default MaxRecordSize")
	}
	f := newFake(1)
	p := newProducer(t, f, Config{MaxRecordSize: size, MaxBufferedBytes: 4 * size})
	res := newResults(2)
	for _, id := range []string{"big-1", "big-2"} {
		if err := p.Put(context.Background(), Record{PartitionKey: id, Data: make([]byte, size-10)}, res.callback(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, r := range res.byID {
		if r.Err != nil {
			t.Fatalf("%s: %v", id, r.Err)
		}
	}
	f.mu.Lock()
	calls := f.putCalls
	f.mu.Unlock()
	if calls != 2 {
		t.Fatalf("%d PutRecords calls for two records over 5 MiB, want one each", calls)
	}
}
