package lease_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/lease"
)

// newStream creates a stream reached through the proxy with ShardLifecycle
// on, so that ListShards filters behave as in AWS's API reference
// (kinesis-mock lists every shard for AT_TRIM_HORIZON); it returns a client
// through the proxy.
func newStream(t *testing.T, shards int) (*kinesis.Client, string) {
	t.Helper()
	px := proxy.StartForTest(t, proxy.Config{ShardLifecycle: true})
	kc := testenv.KinesisClientAt(t, px.URL())
	return kc, testenv.CreateStream(t, kc, shards)
}

// TestShardSyncOnKinesis: against the Kinesis emulator, the initial sync
// creates one lease per shard at the initial position; after a split, the
// next sync creates the children at TRIM_HORIZON with their parent, and
// the LATEST filter leaves the closed parent out.
func TestShardSyncOnKinesis(t *testing.T) {
	testenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	kc, stream := newStream(t, 2)
	store, _, _ := newTable(t, 0)
	syncer, err := lease.NewShardSyncer(lease.ShardSyncConfig{Store: store, Kinesis: kc, Stream: stream, InitialPosition: checkpoint.TrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	if err := syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ls, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[0].Checkpoint != string(checkpoint.TrimHorizon) || ls[0].StartingHashKey != "0" || ls[1].EndingHashKey != "340282366920938463463374607431768211455" {
		t.Fatalf("initial leases %+v", ls)
	}

	parent := ls[0]
	start, _ := hashkey.Parse(parent.StartingHashKey)
	end, _ := hashkey.Parse(parent.EndingHashKey)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(parent.Key), NewStartingHashKey: aws.String(hashkey.Mid(start, end).String()),
	}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitStreamActive(ctx, kc, stream); err != nil {
		t.Fatal(err)
	}
	if err := syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ls, err = store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var children []string
	for _, l := range ls {
		if slices.Contains(l.ParentShardIDs, parent.Key) {
			children = append(children, l.Key)
			if l.Checkpoint != string(checkpoint.TrimHorizon) {
				t.Errorf("child %s starts at %s", l.Key, l.Checkpoint)
			}
		}
	}
	if len(ls) != 4 || len(children) != 2 {
		t.Fatalf("after the split: %d leases, children %v", len(ls), children)
	}

	// A new application starting at LATEST leases only the open shards.
	latestStore, _, _ := newTable(t, 0)
	latest, err := lease.NewShardSyncer(lease.ShardSyncConfig{Store: latestStore, Kinesis: kc, Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	if err := latest.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	lls, _ := latestStore.List(ctx)
	for _, l := range lls {
		got[l.Key] = l.Checkpoint
	}
	want := map[string]string{children[0]: string(checkpoint.Latest), children[1]: string(checkpoint.Latest)}
	for _, l := range ls {
		if l.Key != parent.Key && !slices.Contains(children, l.Key) {
			want[l.Key] = string(checkpoint.Latest) // the original shard that was not split
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LATEST leases %v, want %v", got, want)
	}
}

// TestShardSyncTwoReshardsBehindOnKinesis: against the Kinesis emulator, a
// leased shard is split and one of its children split again before the
// consumer got there. A sync at LATEST (whose filter lists open shards
// only) creates the closed child too, and every descendant at
// TRIM_HORIZON.
func TestShardSyncTwoReshardsBehindOnKinesis(t *testing.T) {
	testenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	kc, stream := newStream(t, 1)
	store, _, _ := newTable(t, 0)
	syncer, err := lease.NewShardSyncer(lease.ShardSyncConfig{Store: store, Kinesis: kc, Stream: stream, InitialPosition: checkpoint.Latest})
	if err != nil {
		t.Fatal(err)
	}
	if err := syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ls, err := store.List(ctx)
	if err != nil || len(ls) != 1 {
		t.Fatalf("initial leases %+v, %v", ls, err)
	}
	root := ls[0]
	split := func(id, from, to string) []string {
		t.Helper()
		start, _ := hashkey.Parse(from)
		end, _ := hashkey.Parse(to)
		if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{
			StreamName: aws.String(stream), ShardToSplit: aws.String(id), NewStartingHashKey: aws.String(hashkey.Mid(start, end).String()),
		}); err != nil {
			t.Fatal(err)
		}
		if err := testenv.WaitStreamActive(ctx, kc, stream); err != nil {
			t.Fatal(err)
		}
		out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		var children []string
		for _, sh := range out.Shards {
			if aws.ToString(sh.ParentShardId) == id {
				children = append(children, aws.ToString(sh.ShardId))
			}
		}
		if len(children) != 2 {
			t.Fatalf("split of %s: children %v", id, children)
		}
		return children
	}
	children := split(root.Key, root.StartingHashKey, root.EndingHashKey)
	c0, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var first *string
	var from, to string
	for _, sh := range c0.Shards {
		if aws.ToString(sh.ShardId) == children[0] {
			first, from, to = sh.ShardId, aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey)
		}
	}
	grandchildren := split(aws.ToString(first), from, to)

	if err := syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	ls, err = store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		got[l.Key] = l.Checkpoint
	}
	want := map[string]string{root.Key: string(checkpoint.Latest)}
	for _, id := range append(children, grandchildren...) {
		want[id] = string(checkpoint.TrimHorizon)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("leases %v, want %v", got, want)
	}
}
