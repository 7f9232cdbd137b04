package lease

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/kinesistest"
)

// fakeKinesis serves ListShards from a fixed shard list, two per page,
// honouring ShardFilter the way Kinesis does for the types the syncer uses.
type fakeKinesis struct {
	mu     sync.Mutex
	shards []fakeShard
	calls  int
}

type fakeShard struct {
	id, parent, adjacent string
	closedAt             time.Time // zero: open
}

func (f *fakeKinesis) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	start := 0
	filter := in.ShardFilter
	if in.NextToken != nil {
		if in.StreamName != nil || in.StreamARN != nil || in.ShardFilter != nil {
			return nil, errors.New("InvalidArgumentException: NextToken with StreamName, StreamARN or ShardFilter")
		}
		n, err := strconv.Atoi(aws.ToString(in.NextToken)[2:])
		if err != nil {
			return nil, err
		}
		start = n
		switch aws.ToString(in.NextToken)[:2] {
		case "L:":
			filter = &kintypes.ShardFilter{Type: kintypes.ShardFilterTypeAtLatest}
		case "T:":
			filter = &kintypes.ShardFilter{Type: kintypes.ShardFilterTypeAtTrimHorizon}
		case "A:":
			filter = nil
		default:
			filter = &kintypes.ShardFilter{Type: kintypes.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(time.Unix(100, 0))}
		}
	} else if aws.ToString(in.StreamName) != "s" && aws.ToString(in.StreamARN) != testStreamARN {
		return nil, errors.New("ResourceNotFoundException")
	}
	var sel []fakeShard
	for _, s := range f.shards {
		if filter == nil { // no filter: every shard
			sel = append(sel, s)
			continue
		}
		switch filter.Type {
		case kintypes.ShardFilterTypeAtLatest:
			if !s.closedAt.IsZero() {
				continue
			}
		case kintypes.ShardFilterTypeFromTimestamp:
			if !s.closedAt.IsZero() && s.closedAt.Before(*filter.Timestamp) {
				continue
			}
		}
		sel = append(sel, s)
	}
	out := &kinesis.ListShardsOutput{}
	end := min(start+2, len(sel))
	for _, s := range sel[start:end] {
		sh := kintypes.Shard{ShardId: aws.String(s.id), HashKeyRange: &kintypes.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("9")}}
		if s.parent != "" {
			sh.ParentShardId = aws.String(s.parent)
		}
		if s.adjacent != "" {
			sh.AdjacentParentShardId = aws.String(s.adjacent)
		}
		out.Shards = append(out.Shards, sh)
	}
	if end < len(sel) {
		prefix := "A:"
		if filter != nil {
			prefix = map[kintypes.ShardFilterType]string{kintypes.ShardFilterTypeAtLatest: "L:", kintypes.ShardFilterTypeAtTrimHorizon: "T:", kintypes.ShardFilterTypeFromTimestamp: "F:"}[filter.Type]
		}
		out.NextToken = aws.String(prefix + strconv.Itoa(end))
	}
	return out, nil
}

// testStreamARN is the ARN of the fake stream "s".
const testStreamARN = "arn:aws:kinesis:us-east-1:123456789012:stream/s"

// A stream where shard 0 was split into 1 and 2 (closed at t=200), 1 and 3
// merged into 4 (closed at t=300), and 3 is an original shard.
func lineageStream() *fakeKinesis {
	return &fakeKinesis{shards: []fakeShard{
		{id: "s0", closedAt: time.Unix(200, 0)},
		{id: "s1", parent: "s0", closedAt: time.Unix(300, 0)},
		{id: "s2", parent: "s0"},
		{id: "s3", closedAt: time.Unix(300, 0)},
		{id: "s4", parent: "s1", adjacent: "s3"},
	}}
}

func checkpoints(t *testing.T, s Store) map[string]string {
	t.Helper()
	ls, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range ls {
		out[l.Key] = l.Checkpoint
	}
	return out
}

func newSyncer(t *testing.T, store Store, k KinesisAPI, pos string, ts time.Time) *ShardSyncer {
	t.Helper()
	s, err := NewShardSyncer(ShardSyncConfig{Store: store, Kinesis: k, Stream: "s", InitialPosition: checkpoint.Position(pos), InitialTimestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	s.retry = backoff.Policy{}
	return s
}

func TestShardSyncInitialPositions(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		pos  string
		ts   time.Time
		want map[string]string
	}{
		{string(checkpoint.TrimHorizon), time.Time{}, map[string]string{"s0": string(checkpoint.TrimHorizon), "s1": string(checkpoint.TrimHorizon), "s2": string(checkpoint.TrimHorizon), "s3": string(checkpoint.TrimHorizon), "s4": string(checkpoint.TrimHorizon)}},
		{string(checkpoint.Latest), time.Time{}, map[string]string{"s2": string(checkpoint.Latest), "s4": string(checkpoint.Latest)}},
		// Open at t=250: s1, s2, s3 start at the timestamp; s4 descends from leased shards.
		{string(checkpoint.AtTimestamp), time.Unix(250, 0), map[string]string{"s1": string(checkpoint.AtTimestamp), "s2": string(checkpoint.AtTimestamp), "s3": string(checkpoint.AtTimestamp), "s4": string(checkpoint.TrimHorizon)}},
	}
	for _, c := range cases {
		store, k := NewMemoryStore(), lineageStream()
		s := newSyncer(t, store, k, c.pos, c.ts)
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := checkpoints(t, store); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: leases %v, want %v", c.pos, got, c.want)
		}
		// A LATEST lease keeps the time it was created: the time LATEST
		// stands for (Lease.LatestTimestamp).
		ls, err := store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if pinned := !l.LatestTimestamp.IsZero(); pinned != (l.Checkpoint == string(checkpoint.Latest)) {
				t.Errorf("%s: lease %s at %s has LatestTimestamp %v", c.pos, l.Key, l.Checkpoint, l.LatestTimestamp)
			}
		}
		// A second sync changes nothing.
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := checkpoints(t, store); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s, second sync: leases %v, want %v", c.pos, got, c.want)
		}
	}
	// Lineage attributes.
	store := NewMemoryStore()
	if err := newSyncer(t, store, lineageStream(), string(checkpoint.TrimHorizon), time.Time{}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l, _ := store.Get(ctx, "s4")
	if !reflect.DeepEqual(l.ParentShardIDs, []string{"s1", "s3"}) || l.StartingHashKey != "0" || l.EndingHashKey != "9" || l.Owner != "" {
		t.Fatalf("merge child lease: %+v", l)
	}
}

// TestShardSyncDescendantsOfLeasedShards: with LATEST, children of a leased
// shard still start at TRIM_HORIZON, so nothing is skipped; the merge
// child's other parent, without a leased ancestor, gets a lease at LATEST,
// so that the child, which waits for it, starts once it ended.
func TestShardSyncDescendantsOfLeasedShards(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	if _, err := store.Create(ctx, Lease{Key: "s1", Checkpoint: "42"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, Lease{Key: "s2", Checkpoint: "43"}); err != nil {
		t.Fatal(err)
	}
	if err := newSyncer(t, store, lineageStream(), string(checkpoint.Latest), time.Time{}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s1": "42", "s2": "43", "s3": string(checkpoint.Latest), "s4": string(checkpoint.TrimHorizon)}
	if got := checkpoints(t, store); !reflect.DeepEqual(got, want) {
		t.Fatalf("leases %v, want %v", got, want)
	}
}

// TestShardSyncDescendantsBeyondTheFilter: a leased shard whose child has
// itself been split already (the consumer lags by two reshards) gets the
// whole line of descendants at TRIM_HORIZON, also with LATEST and
// AT_TIMESTAMP, whose ShardFilter leaves the closed child out of the
// listing. Otherwise the grandchildren would start at the initial position
// with no lease for the child between: its records and the grandchildren's
// first ones would be skipped.
func TestShardSyncDescendantsBeyondTheFilter(t *testing.T) {
	for _, pos := range []string{string(checkpoint.Latest), string(checkpoint.AtTimestamp)} {
		t.Run(pos, func(t *testing.T) {
			ctx := context.Background()
			store := NewMemoryStore()
			if _, err := store.Create(ctx, Lease{Key: "s0", Owner: "w", Checkpoint: "42"}); err != nil {
				t.Fatal(err)
			}
			k := &fakeKinesis{shards: []fakeShard{
				{id: "s0", closedAt: time.Unix(200, 0)},
				{id: "s1", parent: "s0", closedAt: time.Unix(300, 0)},
				{id: "s2", parent: "s0"},
				{id: "s5", parent: "s1"},
				{id: "s6", parent: "s1"},
				{id: "s7", closedAt: time.Unix(50, 0)}, // closed before the timestamp, no lease, no lineage
			}}
			if err := newSyncer(t, store, k, pos, time.Unix(400, 0)).Sync(ctx); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"s0": "42", "s1": string(checkpoint.TrimHorizon), "s2": string(checkpoint.TrimHorizon), "s5": string(checkpoint.TrimHorizon), "s6": string(checkpoint.TrimHorizon)}
			if got := checkpoints(t, store); !reflect.DeepEqual(got, want) {
				t.Fatalf("leases %v, want %v", got, want)
			}
			s5, err := store.Get(ctx, "s5")
			if err != nil {
				t.Fatal(err)
			}
			if done, err := ParentsDone(ctx, store, s5); err != nil || done {
				t.Fatalf("s5 may start before s1 ended: %v %v", done, err)
			}
		})
	}
}

// TestShardSyncCleanup: a finished lease is deleted once its children have
// leases that started and it has no parent lease left; finished shards
// whose descendants are leased are not created again.
func TestShardSyncCleanup(t *testing.T) {
	ctx := context.Background()
	store, k := NewMemoryStore(), lineageStream()
	s := newSyncer(t, store, k, string(checkpoint.TrimHorizon), time.Time{})
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	set := func(key, cp string) {
		l, err := store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		l.Checkpoint = cp
		if _, err := store.Checkpoint(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	set("s0", string(checkpoint.ShardEnd))
	set("s1", "77") // s2 not started yet
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, "s0"); err != nil {
		t.Fatalf("s0 deleted before all its children started: %v", err)
	}
	set("s2", "88")
	set("s1", string(checkpoint.ShardEnd)) // s1's child s4 has not started; s3 is its co-parent
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s1": string(checkpoint.ShardEnd), "s2": "88", "s3": string(checkpoint.TrimHorizon), "s4": string(checkpoint.TrimHorizon)}
	if got := checkpoints(t, store); !reflect.DeepEqual(got, want) {
		t.Fatalf("after s0's children started: %v, want %v", got, want)
	}
	set("s3", string(checkpoint.ShardEnd))
	set("s4", "99")
	if err := s.Sync(ctx); err != nil { // s0 is listed again but not recreated
		t.Fatal(err)
	}
	want = map[string]string{"s2": "88", "s4": "99"}
	if got := checkpoints(t, store); !reflect.DeepEqual(got, want) {
		t.Fatalf("after s4 started: %v, want %v", got, want)
	}
}

// TestShardSyncRace: syncers racing on one table create each lease once.
func TestShardSyncRace(t *testing.T) {
	store := &countingStore{Store: NewMemoryStore()}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := newSyncer(t, store, lineageStream(), string(checkpoint.TrimHorizon), time.Time{}).Sync(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := checkpoints(t, store); len(got) != 5 {
		t.Fatalf("leases %v", got)
	}
}

func TestCreateChildLeasesAndParentsDone(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	parent, _ := store.Create(ctx, Lease{Key: "p", Owner: "w", Checkpoint: "5"})
	other, _ := store.Create(ctx, Lease{Key: "q", Checkpoint: string(checkpoint.ShardEnd)})
	children := []kintypes.ChildShard{{
		ShardId: aws.String("c"), ParentShards: []string{"q", "p"},
		HashKeyRange: &kintypes.HashKeyRange{StartingHashKey: aws.String("10"), EndingHashKey: aws.String("20")},
	}}
	for range 2 { // idempotent
		if err := CreateChildLeases(ctx, store, children); err != nil {
			t.Fatal(err)
		}
	}
	c, err := store.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if c.Checkpoint != string(checkpoint.TrimHorizon) || !reflect.DeepEqual(c.ParentShardIDs, []string{"p", "q"}) || c.StartingHashKey != "10" || c.EndingHashKey != "20" || c.Owner != "" {
		t.Fatalf("child lease %+v", c)
	}
	if done, err := ParentsDone(ctx, store, c); err != nil || done {
		t.Fatalf("ParentsDone with p unfinished: %v %v", done, err)
	}
	parent.Checkpoint = string(checkpoint.ShardEnd)
	if _, err := store.Checkpoint(ctx, parent); err != nil {
		t.Fatal(err)
	}
	if done, err := ParentsDone(ctx, store, c); err != nil || !done {
		t.Fatalf("ParentsDone with both at SHARD_END: %v %v", done, err)
	}
	if err := store.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	if done, err := ParentsDone(ctx, store, c); err != nil || !done {
		t.Fatalf("ParentsDone with q gone: %v %v", done, err)
	}
	if err := CreateChildLeases(ctx, store, []kintypes.ChildShard{{}}); err == nil {
		t.Fatal("child without ShardId accepted")
	}
}

func TestShardSyncConfigValidate(t *testing.T) {
	s, k := NewMemoryStore(), lineageStream()
	for _, cfg := range []ShardSyncConfig{
		{Kinesis: k, Stream: "s"},
		{Store: s, Stream: "s"},
		{Store: s, Kinesis: k},
		{Store: s, Kinesis: k, Stream: "s", InitialPosition: "EARLIEST"},
		{Store: s, Kinesis: k, Stream: "s", InitialPosition: checkpoint.AtTimestamp},
		{Store: s, Kinesis: k, Stream: "s", Interval: -1},
		{Store: s, Kinesis: k, Stream: "arn:aws:kinesis:us-east-1:123456789012:table/s"},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", cfg)
		}
	}
}

// TestShardSyncerRun: Run syncs at once and then every Interval, and
// returns nil when its context ends. The stream is given by its ARN.
func TestShardSyncerRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		k := lineageStream()
		s, err := NewShardSyncer(ShardSyncConfig{Store: NewMemoryStore(), Kinesis: k, Stream: testStreamARN, Interval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		calls := func() int {
			k.mu.Lock()
			defer k.mu.Unlock()
			return k.calls
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		// Each sync lists every shard (three pages) and the open ones (one
		// page).
		for i, want := range []int{4, 8, 12} {
			synctest.Wait()
			if got := calls(); got != want {
				t.Fatalf("after %v: %d ListShards calls, want %d", time.Duration(i)*time.Minute, got, want)
			}
			time.Sleep(time.Minute - time.Nanosecond)
			synctest.Wait()
			if got := calls(); got != want {
				t.Fatalf("a sync before Interval passed: %d ListShards calls, want %d", got, want)
			}
			time.Sleep(time.Nanosecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestShardSyncTrimHorizonFinishedParentStaysDeleted: with TRIM_HORIZON
// (whose ShardFilter AT_TRIM_HORIZON lists only the shards open at the trim
// horizon, not a split's children), a finished parent whose children are
// leased is deleted once its children started and never created again.
func TestShardSyncTrimHorizonFinishedParentStaysDeleted(t *testing.T) {
	ctx := context.Background()
	k, err := kinesistest.New(kinesistest.Config{StreamName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	const parent = "shardId-000000000000"
	left, right, err := k.Split(parent)
	if err != nil {
		t.Fatal(err)
	}
	store := NewMemoryStore()
	for _, l := range []Lease{
		{Key: parent, Checkpoint: string(checkpoint.ShardEnd), ChildShardIDs: []string{left, right}},
		{Key: left, Checkpoint: string(checkpoint.TrimHorizon), ParentShardIDs: []string{parent}},
		{Key: right, Checkpoint: string(checkpoint.TrimHorizon), ParentShardIDs: []string{parent}},
	} {
		if _, err := store.Create(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	s := newSyncer(t, store, k, string(checkpoint.TrimHorizon), time.Time{})
	for i := range 20 {
		if i == 3 { // the children start: cleanup may delete the parent now
			for _, c := range []string{left, right} {
				l, err := store.Get(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				l.Checkpoint = "1"
				if _, err := store.Checkpoint(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got := checkpoints(t, store)
		_, hasParent := got[parent]
		if i < 3 && !hasParent {
			t.Fatalf("sync %d: parent deleted before its children started: %v", i, got)
		}
		if i >= 3 && hasParent {
			t.Fatalf("sync %d: finished parent leased again: %v", i, got)
		}
		if _, ok := got[left]; !ok {
			t.Fatalf("sync %d: child %s lost its lease: %v", i, left, got)
		}
		if _, ok := got[right]; !ok {
			t.Fatalf("sync %d: child %s lost its lease: %v", i, right, got)
		}
	}
}
