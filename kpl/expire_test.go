package kpl

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/internal/wait"
)

// TestExpireTouchesOnlyExpiredBatches checks that expiry takes out the
// expired records and leaves the batches without any as they are (the
// same batches, not rebuilt), rebuilding only the one that mixes expired
// records with records still in time.
func TestExpireTouchesOnlyExpiredBatches(t *testing.T) {
	p := &Producer{cfg: Config{Stream: testStream, RecordTTL: time.Second, AggregationMaxSize: 300}.withDefaults()}
	s := &shard{id: "shardId-000000000000"}
	const ttl = int64(time.Second)
	// Records put at t = 0..9 (expired at now = ttl+4 for put <= 4).
	for i := range 10 {
		r := testRec(fmt.Sprintf("k%d", i), make([]byte, 100), int64(i))
		p.addLocked(s, &r)
	}
	if len(s.sealed) < 2 {
		t.Fatalf("%d sealed batches, want several", len(s.sealed))
	}
	before := append([]*batch(nil), s.sealed...)
	open := s.open
	t.Logf("batches before: %d sealed + open of %d", len(before), len(open.recs))

	expired := p.expireLocked(s, ttl+4, nil)
	if len(expired) != 5 {
		t.Fatalf("expired %d records, want 5", len(expired))
	}
	for i, r := range expired {
		if r.put != int64(i) {
			t.Errorf("expired[%d] put at %d, want %d", i, r.put, i)
		}
	}
	var kept []int64
	for _, b := range s.sealed {
		for _, r := range b.recs {
			kept = append(kept, r.put)
		}
		if b.enc.Len() != len(b.recs) {
			t.Errorf("batch encodes %d records, holds %d", b.enc.Len(), len(b.recs))
		}
	}
	if s.open != open {
		t.Error("the open batch, with no expired record, was replaced")
	}
	for _, r := range s.open.recs {
		kept = append(kept, r.put)
	}
	want := []int64{5, 6, 7, 8, 9}
	if fmt.Sprint(kept) != fmt.Sprint(want) {
		t.Errorf("kept records put at %v, want %v", kept, want)
	}
	// Batches whose records were all in time are the same batches.
	last := before[len(before)-1]
	if last.oldest >= 5 && s.sealed[len(s.sealed)-1] != last {
		t.Error("a batch without expired records was rebuilt")
	}
}

// TestDefaultBufferBoundFollowsShards checks that with the defaults the
// buffer holds no more than a stream can take in half of RecordTTL, and
// that Put blocks (here: fails with ErrBufferFull) at that bound.
func TestDefaultBufferBoundFollowsShards(t *testing.T) {
	f := newStream(t, 1)
	p := newProducer(t, f, Config{FailWhenBufferFull: true, RecordMaxBufferedTime: time.Hour})
	ctx := context.Background()
	want := int64(ShardBytesPerSecond * DefaultRecordTTL.Seconds() / 2)
	wait.For(t, 5*time.Second, "the bound derived from one shard", func() bool { return p.maxBytes.Load() == want })

	// Fill the buffer: records wait for their linger time (an hour), so
	// they all stay.
	data := make([]byte, 64<<10)
	n := 0
	for {
		err := p.Put(ctx, Record{PartitionKey: fmt.Sprint(n), Data: data}, nil)
		if err == ErrBufferFull {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n > 1000 {
			t.Fatal("no ErrBufferFull after 1000 records of 64 KiB")
		}
	}
	// The buffer holds up to 1/gcHeadroom of the bound in records and
	// request bodies in flight, and the bodies take up to a quarter of
	// that: the records alone fill between a quarter and all of it.
	if got, max := p.bufBytes.Load(), want/gcHeadroom; got > max || got < max/4 {
		t.Errorf("buffer full at %d bytes of records, want at most %d and at least a quarter of it", got, max)
	}
	// Sending 15 MiB at one shard's rate takes a while: give up on it.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := p.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want the deadline's error", err)
	}
}
