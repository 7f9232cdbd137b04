package kpl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Kinesis accepts an ExplicitHashKey only in canonical decimal form
// (0|[1-9][0-9]{0,38}); any other spelling fails the whole PutRecords
// request, and with it every other record in that request. Put must reject
// such a key up front.
func TestExplicitHashKeyMustBeCanonical(t *testing.T) {
	f := newFake(1)
	p := newProducer(t, f, Config{})
	for _, ehk := range []string{"007", "00", "0123456789"} {
		err := p.Put(context.Background(), Record{PartitionKey: "k", ExplicitHashKey: ehk, Data: []byte("x")},
			func(Result) { t.Errorf("callback called for rejected key %q", ehk) })
		if !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("Put with ExplicitHashKey %q: err = %v, want ErrInvalidRecord", ehk, err)
		}
	}
	for _, ehk := range []string{"0", "7", "340282366920938463463374607431768211455"} {
		if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", ExplicitHashKey: ehk, Data: []byte("x")}); err != nil {
			t.Errorf("Put with ExplicitHashKey %q: %v", ehk, err)
		}
	}
}

// A callback may call Put (while there is room in the buffer) without
// deadlocking the producer, whichever goroutine runs the callback: a sender
// on success, the dispatcher on expiry.
func TestCallbackMayPut(t *testing.T) {
	f := newFake(2)
	p := newProducer(t, f, Config{RecordMaxBufferedTime: time.Millisecond})
	const depth = 50
	done := make(chan error, 1)
	var chain func(i int) func(Result)
	chain = func(i int) func(Result) {
		return func(r Result) {
			if r.Err != nil || i == depth {
				done <- r.Err
				return
			}
			if err := p.Put(context.Background(), Record{PartitionKey: randomKey(i), Data: []byte("x")}, chain(i+1)); err != nil {
				done <- err
			}
		}
	}
	if err := p.Put(context.Background(), Record{PartitionKey: "start", Data: []byte("x")}, chain(0)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("chain of Puts from callbacks stalled")
	}

	// From the dispatcher: records that expire before a shard map exists.
	f2 := newFake(1)
	f2.listFault = func(int) error { return serverError() }
	p2 := newProducer(t, f2, Config{RecordTTL: 20 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	got := make(chan error, 2)
	err := p2.Put(context.Background(), Record{PartitionKey: "a", Data: []byte("x")}, func(r Result) {
		got <- r.Err
		if err := p2.Put(context.Background(), Record{PartitionKey: "b", Data: []byte("x")}, func(r Result) { got <- r.Err }); err != nil {
			got <- err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-got:
			if !errors.Is(err, ErrRecordExpired) {
				t.Fatalf("err = %v, want ErrRecordExpired", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("callback calling Put from the dispatcher stalled")
		}
	}
}

// Kinesis counts a partition key's length in UTF-16 code units (as Java
// strings do), so a character outside the Basic Multilingual Plane counts
// twice; a key over 256 units fails the whole request it travels in.
func TestPartitionKeyLengthInUTF16Units(t *testing.T) {
	f := newFake(1)
	p := newProducer(t, f, Config{})
	err := p.Put(context.Background(), Record{PartitionKey: strings.Repeat("😀", 129), Data: []byte("x")},
		func(Result) { t.Error("callback called for a rejected key") })
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Put with 129 astral characters (258 UTF-16 units): err = %v, want ErrInvalidRecord", err)
	}
	for _, pk := range []string{strings.Repeat("😀", 128), strings.Repeat("é", 256), strings.Repeat("😀", 127) + "ab"} {
		if _, err := p.PutSync(context.Background(), Record{PartitionKey: pk, Data: []byte("x")}); err != nil {
			t.Errorf("key of %d runes rejected: %v", len([]rune(pk)), err)
		}
	}
}

// A callback that puts one record for the one it completes does not
// deadlock on a full buffer: a completed record's room is given back before
// its callback runs.
func TestCallbackMayPutWhenBufferFull(t *testing.T) {
	f := newFake(1)
	p := newProducer(t, f, Config{MaxBufferedRecords: 1, RecordMaxBufferedTime: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const depth = 20
	done := make(chan error, 1)
	var chain func(i int) func(Result)
	chain = func(i int) func(Result) {
		return func(r Result) {
			if r.Err != nil || i == depth {
				done <- r.Err
				return
			}
			if err := p.Put(ctx, Record{PartitionKey: randomKey(i), Data: []byte("x")}, chain(i+1)); err != nil {
				done <- err
			}
		}
	}
	if err := p.Put(ctx, Record{PartitionKey: "start", Data: []byte("x")}, chain(0)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("chain of Puts from callbacks with a one-record buffer: %v", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
