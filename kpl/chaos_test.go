package kpl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestChaosEveryRecordOnce puts records from several goroutines while
// entries and whole calls fail at random and the stream is resharded twice,
// then checks that every callback ran once, that every record reported
// written is stored where its result says (shard, sequence number,
// sub-sequence number), and that nothing is stored twice or lost.
func TestChaosEveryRecordOnce(t *testing.T) {
	for _, order := range []bool{false, true} {
		t.Run(fmt.Sprintf("PreserveOrder=%v", order), func(t *testing.T) {
			f := newFake(2)
			var mu sync.Mutex
			r := rand.New(rand.NewPCG(9, uint64(len(fmt.Sprint(order)))))
			f.entryFault = func(call, entry int) string {
				mu.Lock()
				defer mu.Unlock()
				switch x := r.IntN(10); {
				case x < 1:
					return "ProvisionedThroughputExceededException"
				case x < 2:
					return "InternalFailure"
				}
				return ""
			}
			f.callFault = func(call int) error {
				mu.Lock()
				defer mu.Unlock()
				if r.IntN(20) == 0 {
					return serverError()
				}
				return nil
			}
			p := newProducer(t, f, Config{
				PreserveOrder: order, AggregationMaxSize: 300, CollectionMaxCount: 10,
				RecordMaxBufferedTime: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
				minRefreshInterval: time.Millisecond,
			})
			for deadline := time.Now().Add(5 * time.Second); p.shards.Load() == nil; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no shard map")
				}
			}
			const workers, per = 4, 750
			res := newResults(workers * per)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						n := w*per + i
						id := fmt.Sprintf("rec-%06d", n)
						if err := p.Put(context.Background(), Record{PartitionKey: randomKey(n), Data: []byte(id)}, res.callback(id)); err != nil {
							t.Error(err)
							return
						}
						switch {
						case w == 0 && i == per/3:
							f.setShards(evenShards(4, 2)) // split both
						case w == 0 && i == 2*per/3:
							f.setShards(evenShards(3, 6)) // and again
						}
					}
				}()
			}
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			res.wait(t, time.Second)
			stored := map[string]userRecord{} // by shard/seq/sub
			for _, u := range f.readBack() {
				stored[fmt.Sprintf("%s/%s/%d", u.ShardID, u.Seq, u.Sub)] = u
			}
			for id, r := range res.byID {
				if r.Err != nil {
					t.Fatalf("%s failed: %v", id, r.Err)
				}
				u, ok := stored[fmt.Sprintf("%s/%s/%d", r.ShardID, r.SequenceNumber, r.SubSequenceNumber)]
				if !ok || u.Data != id {
					t.Fatalf("%s reported at %s %s/%d, where the stream holds %+v", id, r.ShardID, r.SequenceNumber, r.SubSequenceNumber, u)
				}
			}
			// Once each (records written before a reshard stay on the
			// parent shards, so the shard is not checked against the
			// current map).
			count := map[string]int{}
			for _, u := range stored {
				count[u.Data]++
			}
			for i := range workers * per {
				if c := count[fmt.Sprintf("rec-%06d", i)]; c != 1 {
					t.Fatalf("rec-%06d stored %d times", i, c)
				}
			}
			if len(stored) != workers*per {
				t.Fatalf("%d user records stored, want %d", len(stored), workers*per)
			}
			// Records landing on other shards than predicted refresh the
			// map, in the background.
			for deadline := time.Now().Add(5 * time.Second); p.shards.Load().version < 2; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("shard map never refreshed after the reshards")
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestChaosCloseWithDeadline closes the producer with a short deadline while
// records are being retried: every callback runs exactly once, by the time
// Close returns, and a record reported written is stored where its result
// says.
func TestChaosCloseWithDeadline(t *testing.T) {
	for seed := range uint64(5) {
		f := newFake(2)
		var mu sync.Mutex
		r := rand.New(rand.NewPCG(seed, 3))
		f.entryFault = func(call, entry int) string {
			mu.Lock()
			defer mu.Unlock()
			if r.IntN(4) == 0 {
				return "InternalFailure"
			}
			return ""
		}
		f.callFault = func(call int) error {
			time.Sleep(time.Millisecond)
			return nil
		}
		p, err := New(Config{Stream: "s", Kinesis: f, AggregationMaxSize: 300, CollectionMaxCount: 10,
			RecordMaxBufferedTime: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			MaxConnections: 2})
		if err != nil {
			t.Fatal(err)
		}
		const n = 2000
		res := putMany(t, p, n, randomKey)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seed+1)*5*time.Millisecond)
		closeErr := p.Close(ctx)
		cancel()
		res.mu.Lock()
		got := len(res.byID)
		res.mu.Unlock()
		if got != n {
			t.Fatalf("seed %d: %d of %d callbacks called when Close returned", seed, got, n)
		}
		stored := map[string]userRecord{}
		for _, u := range f.readBack() {
			stored[fmt.Sprintf("%s/%s/%d", u.ShardID, u.Seq, u.Sub)] = u
		}
		failed := 0
		for id, r := range res.byID {
			if r.Err != nil {
				if !errors.Is(r.Err, ErrClosed) {
					t.Fatalf("seed %d: %s: %v, want ErrClosed", seed, id, r.Err)
				}
				failed++
				continue
			}
			if u := stored[fmt.Sprintf("%s/%s/%d", r.ShardID, r.SequenceNumber, r.SubSequenceNumber)]; u.Data != id {
				t.Fatalf("seed %d: %s reported written at %s %s/%d, where the stream holds %+v", seed, id, r.ShardID, r.SequenceNumber, r.SubSequenceNumber, u)
			}
		}
		if (failed > 0) != (closeErr != nil) {
			t.Fatalf("seed %d: %d records failed, Close = %v", seed, failed, closeErr)
		}
		count := map[string]int{}
		for _, u := range stored {
			count[u.Data]++
			if count[u.Data] > 1 {
				t.Fatalf("seed %d: %s stored twice", seed, u.Data)
			}
		}
		t.Logf("seed %d: %d of %d failed by Close (%v)", seed, failed, n, closeErr)
	}
}
