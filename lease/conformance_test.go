package lease

import (
	"context"
	"errors"
	"fmt"
	"github.com/kinesisgo/kinesis/checkpoint"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// testStoreConformance checks the Store contract; every Store runs it.
func testStoreConformance(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}
	extra := map[string]types.AttributeValue{
		"throughputKBps":         &types.AttributeValueMemberN{Value: "12.5"},
		"someFutureAttribute":    &types.AttributeValueMemberS{Value: "kept"},
		"pendingCheckpointState": &types.AttributeValueMemberB{Value: []byte{1, 2, 3}},
	}
	full := Lease{
		Key: "shardId-000000000001", Owner: "w1", Counter: 7,
		Checkpoint: "49590338271490256608559692538361571095921575989136588801", CheckpointSubSequence: 3,
		PendingCheckpoint: "49590338271490256608559692538361571095921575989136588802", PendingCheckpointSubSequence: 1,
		OwnerSwitchesSinceCheckpoint: 2,
		ParentShardIDs:               []string{"shardId-000000000000", "shardId-000000000002"},
		ChildShardIDs:                []string{"shardId-000000000005"},
		StartingHashKey:              "0", EndingHashKey: "340282366920938463463374607431768211455",
		Extra: extra,
	}

	t.Run("CreateGetList", func(t *testing.T) {
		s, c := newStore(t), ctx(t)
		if _, err := s.Create(c, full); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(c, Lease{Key: full.Key}); !errors.Is(err, ErrExists) {
			t.Fatalf("second Create: got %v, want ErrExists", err)
		}
		got, err := s.Get(c, full.Key)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, full) {
			t.Fatalf("Get:\n got %+v\nwant %+v", got, full)
		}
		if _, err := s.Get(c, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get missing: got %v, want ErrNotFound", err)
		}
		for i := range 25 {
			if _, err := s.Create(c, Lease{Key: fmt.Sprintf("k%03d", i), Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
				t.Fatal(err)
			}
		}
		ls, err := s.List(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != 26 || ls[0].Key != "k000" || ls[25].Key != full.Key {
			t.Fatalf("List: %d leases, first %q last %q", len(ls), ls[0].Key, ls[len(ls)-1].Key)
		}
		if ls[1].Owner != "" || ls[1].Counter != 0 || ls[1].Checkpoint != string(checkpoint.TrimHorizon) {
			t.Fatalf("List: minimal lease read back as %+v", ls[1])
		}
	})

	t.Run("Renew", func(t *testing.T) {
		s, c := newStore(t), ctx(t)
		l, _ := s.Create(c, full)
		r, err := s.Renew(c, l)
		if err != nil {
			t.Fatal(err)
		}
		want := full.Clone()
		want.Counter++
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("Renew:\n got %+v\nwant %+v", r, want)
		}
		if _, err := s.Renew(c, l); !errors.Is(err, ErrConflict) {
			t.Fatalf("Renew with stale counter: got %v, want ErrConflict", err)
		}
		other := r
		other.Owner = "w2"
		if _, err := s.Renew(c, other); !errors.Is(err, ErrConflict) {
			t.Fatalf("Renew by another owner: got %v, want ErrConflict", err)
		}
		if _, err := s.Renew(c, Lease{Key: "absent", Owner: "w1"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("Renew of absent lease: got %v, want ErrConflict", err)
		}
		got, _ := s.Get(c, full.Key)
		if got.Counter != full.Counter+1 {
			t.Fatalf("failed renewals changed the counter to %d", got.Counter)
		}
	})

	t.Run("TakeRelease", func(t *testing.T) {
		s, c := newStore(t), ctx(t)
		l, _ := s.Create(c, Lease{Key: "a", Checkpoint: string(checkpoint.TrimHorizon), Extra: extra})
		tk, err := s.Take(c, l, "w1")
		if err != nil {
			t.Fatal(err)
		}
		// As in the Java KCL, taking an unowned lease is no owner switch.
		if tk.Owner != "w1" || tk.Counter != 1 || tk.OwnerSwitchesSinceCheckpoint != 0 || !reflect.DeepEqual(tk.Extra, extra) {
			t.Fatalf("Take: got %+v", tk)
		}
		if _, err := s.Take(c, l, "w2"); !errors.Is(err, ErrConflict) {
			t.Fatalf("Take with stale counter: got %v, want ErrConflict", err)
		}
		again, err := s.Take(c, tk, "w1")
		if err != nil || again.OwnerSwitchesSinceCheckpoint != 0 || again.Counter != 2 {
			t.Fatalf("Take by the same owner: %+v, %v (owner switches must not grow)", again, err)
		}
		st, err := s.Take(c, again, "w2") // a steal: whoever owns it
		if err != nil || st.Owner != "w2" || st.OwnerSwitchesSinceCheckpoint != 1 {
			t.Fatalf("steal: %+v, %v", st, err)
		}
		if _, err := s.Release(c, again); !errors.Is(err, ErrConflict) {
			t.Fatalf("Release by the old owner: got %v, want ErrConflict", err)
		}
		rl, err := s.Release(c, st)
		if err != nil || rl.Owner != "" || rl.Counter != st.Counter+1 || !reflect.DeepEqual(rl.Extra, extra) {
			t.Fatalf("Release: %+v, %v", rl, err)
		}
		got, _ := s.Get(c, "a")
		if got.Owner != "" {
			t.Fatalf("released lease still owned by %q", got.Owner)
		}
		// Renewing an unowned lease needs an empty Owner in the expectation.
		if _, err := s.Renew(c, rl); err != nil {
			t.Fatalf("Renew unowned: %v", err)
		}
		if _, err := s.Take(c, got, ""); err == nil {
			t.Fatal("Take with an empty owner succeeded")
		}
	})

	t.Run("Checkpoint", func(t *testing.T) {
		s, c := newStore(t), ctx(t)
		l, _ := s.Create(c, full)
		next := l.Clone()
		next.Checkpoint, next.CheckpointSubSequence = "49590338271490256608559692538361571095921575989136588900", 0
		next.PendingCheckpoint, next.PendingCheckpointSubSequence = "", 0
		next.OwnerSwitchesSinceCheckpoint = 0
		next.ChildShardIDs = []string{"shardId-000000000009", "shardId-000000000008"}
		next.ParentShardIDs = nil // not a progress field: must not be written
		next.StartingHashKey = "1"
		cp, err := s.Checkpoint(c, next)
		if err != nil {
			t.Fatal(err)
		}
		want := full.Clone()
		want.Counter++
		want.Checkpoint, want.CheckpointSubSequence = next.Checkpoint, 0
		want.PendingCheckpoint, want.PendingCheckpointSubSequence = "", 0
		want.OwnerSwitchesSinceCheckpoint = 0
		want.ChildShardIDs = []string{"shardId-000000000008", "shardId-000000000009"}
		delete(want.Extra, "pendingCheckpointState") // goes with the pending checkpoint
		if !reflect.DeepEqual(cp, want) {
			t.Fatalf("Checkpoint:\n got %+v\nwant %+v", cp, want)
		}
		if got, _ := s.Get(c, full.Key); !reflect.DeepEqual(got, want) {
			t.Fatalf("Get after Checkpoint:\n got %+v\nwant %+v", got, want)
		}
		if _, err := s.Checkpoint(c, next); !errors.Is(err, ErrConflict) {
			t.Fatalf("Checkpoint with stale counter: got %v, want ErrConflict", err)
		}
		stranger := cp
		stranger.Owner = "w9"
		if _, err := s.Checkpoint(c, stranger); !errors.Is(err, ErrConflict) {
			t.Fatalf("Checkpoint by another owner: got %v, want ErrConflict", err)
		}
		pend := cp
		pend.PendingCheckpoint, pend.PendingCheckpointSubSequence = string(checkpoint.ShardEnd), 0
		p, err := s.Checkpoint(c, pend)
		if err != nil || p.PendingCheckpoint != string(checkpoint.ShardEnd) || p.Checkpoint != cp.Checkpoint {
			t.Fatalf("prepare: %+v, %v", p, err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s, c := newStore(t), ctx(t)
		l, _ := s.Create(c, full)
		stale := l
		stale.Counter--
		if err := s.Delete(c, stale); !errors.Is(err, ErrConflict) {
			t.Fatalf("Delete with stale counter: got %v, want ErrConflict", err)
		}
		if err := s.Delete(c, l); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(c, l.Key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
		if err := s.Delete(c, l); !errors.Is(err, ErrConflict) {
			t.Fatalf("second Delete: got %v, want ErrConflict", err)
		}
	})

	t.Run("ConcurrentTakesOneWins", func(t *testing.T) {
		s, c := newStore(t), ctx(t)
		l, _ := s.Create(c, Lease{Key: "race", Checkpoint: string(checkpoint.TrimHorizon)})
		errs := make(chan error, 8)
		for i := range 8 {
			go func() { _, err := s.Take(c, l, fmt.Sprintf("w%d", i)); errs <- err }()
		}
		wins := 0
		for range 8 {
			err := <-errs
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ErrConflict):
				t.Errorf("Take: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d concurrent takes of one counter succeeded, want 1", wins)
		}
	})
}

func TestMemoryStoreConformance(t *testing.T) {
	testStoreConformance(t, func(*testing.T) Store { return NewMemoryStore() })
}
