package kpl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Close's error reports the records that Close failed, not those merely
// outstanding at its deadline: a request that completes after the deadline
// (the client not stopping at once) writes its records, and when that was
// all, Close returns nil.
func TestCloseErrorCountsFailedRecords(t *testing.T) {
	f := newFake(1)
	f.callFault = func(int) error { time.Sleep(100 * time.Millisecond); return nil } // ignores cancellation
	p, err := New(Config{Stream: "s", Kinesis: f, RecordMaxBufferedTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res := putMany(t, p, 10, randomKey)
	for deadline := time.Now().Add(5 * time.Second); p.inflight.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no request in flight")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	closeErr := p.Close(ctx)
	res.wait(t, time.Second)
	for id, r := range res.byID {
		if r.Err != nil {
			t.Fatalf("%s: %v", id, r.Err)
		}
	}
	if closeErr != nil {
		t.Fatalf("Close = %v, though every record was written", closeErr)
	}

	// Records never sent are failed and counted.
	f2 := newFake(1)
	f2.gate = make(chan struct{}) // never opened
	p2, err := New(Config{Stream: "s", Kinesis: f2, RecordMaxBufferedTime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	res2 := putMany(t, p2, 7, randomKey)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	closeErr = p2.Close(ctx2)
	res2.wait(t, time.Second)
	if !errors.Is(closeErr, context.DeadlineExceeded) || !strings.Contains(fmtErr(closeErr), "7 records") {
		t.Fatalf("Close = %v, want 7 records failed on the deadline", closeErr)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
