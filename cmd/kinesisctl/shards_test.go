package main

import (
	"strings"
	"testing"

	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// rangeOf parses a shard's hash range (decoded JSON does not carry it).
func rangeOf(t *testing.T, s shardInfo) hashkey.Range {
	t.Helper()
	r, err := hashkey.ParseRange(s.StartingHashKey, s.EndingHashKey)
	if err != nil {
		t.Fatalf("shard %s: %v", s.ShardID, err)
	}
	return r
}

// checkCover fails unless shards' hash ranges are contiguous and cover
// exactly [start, end].
func checkCover(t *testing.T, shards []shardInfo, start, end hashkey.Key) {
	t.Helper()
	ranges := make(map[hashkey.Key]hashkey.Range)
	for _, s := range shards {
		r, err := hashkey.ParseRange(s.StartingHashKey, s.EndingHashKey)
		if err != nil {
			t.Fatalf("shard %s: %v", s.ShardID, err)
		}
		ranges[r.Start] = r
	}
	at := start
	for range shards {
		r, ok := ranges[at]
		if !ok {
			t.Fatalf("no shard starts at hash key %s: %+v", at, shards)
		}
		if r.End == end {
			return
		}
		at = next(r.End)
	}
	t.Fatalf("shards do not reach hash key %s: %+v", end, shards)
}

func TestSplitMergeAndShardsTree(t *testing.T) {
	t.Parallel()
	_, stream := testenv.NewStream(t, 2)

	before := decode[[]shardInfo](t, mustRun(t, "shards", stream, "--json"))
	if len(before) != 2 || !before[0].open() || !before[1].open() {
		t.Fatalf("new stream's shards: %+v", before)
	}
	checkCover(t, before, hashkey.Key{}, hashkey.Max)

	split := decode[struct {
		Shard    string      `json:"shard"`
		At       string      `json:"at"`
		Children []shardInfo `json:"children"`
	}](t, mustRun(t, "split", stream, "0", "--json"))
	if split.Shard != "shardId-000000000000" || len(split.Children) != 2 {
		t.Fatalf("split: %+v", split)
	}
	parent := rangeOf(t, before[0])
	if want := next(hashkey.Mid(parent.Start, parent.End)).String(); split.At != want {
		t.Errorf("split at %s, want the midpoint's successor %s", split.At, want)
	}
	checkCover(t, split.Children, parent.Start, parent.End)
	c0, c1 := split.Children[0], split.Children[1]
	if split.Children[0].StartingHashKey != parent.Start.String() {
		c0, c1 = c1, c0
	}
	if c1.StartingHashKey != split.At {
		t.Errorf("second child starts at %s, want %s", c1.StartingHashKey, split.At)
	}

	// Splitting the now closed parent is a conflict.
	wantExit(t, kctl(t, "split", stream, "0"), exitConflict, "closed")

	merge := decode[struct {
		Shards []string   `json:"shards"`
		Child  *shardInfo `json:"child"`
	}](t, mustRun(t, "merge", stream, c1.ShardID, c0.ShardID, "--json"))
	if merge.Child == nil || merge.Child.ParentShardID != c0.ShardID || merge.Child.AdjacentParentShardID != c1.ShardID {
		t.Fatalf("merge: %+v (children were %s, %s)", merge, c0.ShardID, c1.ShardID)
	}
	if merge.Child.StartingHashKey != before[0].StartingHashKey || merge.Child.EndingHashKey != before[0].EndingHashKey {
		t.Errorf("merged child covers [%s, %s], want the original [%s, %s]", merge.Child.StartingHashKey,
			merge.Child.EndingHashKey, before[0].StartingHashKey, before[0].EndingHashKey)
	}

	all := decode[[]shardInfo](t, mustRun(t, "shards", stream, "--json"))
	if len(all) != 5 {
		t.Fatalf("want 5 shards (2 original, 2 split children, 1 merge child), got %+v", all)
	}
	byID := map[string]shardInfo{}
	var open []shardInfo
	for _, s := range all {
		byID[s.ShardID] = s
		if s.open() {
			open = append(open, s)
		}
	}
	checkCover(t, open, hashkey.Key{}, hashkey.Max)
	if got := byID["shardId-000000000000"]; got.open() || len(got.Children) != 2 {
		t.Errorf("shard 0 after the split: %+v", got)
	}
	for _, id := range []string{c0.ShardID, c1.ShardID} {
		if got := byID[id]; got.open() || len(got.Children) != 1 || got.Children[0] != merge.Child.ShardID {
			t.Errorf("split child %s after the merge: %+v", id, got)
		}
	}

	tree := mustRun(t, "shards", stream).stdout
	for _, want := range []string{
		"├─ " + c0.ShardID,
		"└─ " + c1.ShardID,
		"│  └─ " + merge.Child.ShardID,
		"(merged into " + merge.Child.ShardID + ")",
		c0.ShardID + " + " + c1.ShardID,
		"closed", "open",
	} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
}

func TestSplitAtAndBadShards(t *testing.T) {
	t.Parallel()
	_, stream := testenv.NewStream(t, 3)
	shards := decode[[]shardInfo](t, mustRun(t, "shards", stream, "--json"))

	// Shards 0 and 2 are not adjacent.
	wantExit(t, kctl(t, "merge", stream, "0", "2"), exitConflict, "not adjacent")
	// A well-formed ID that the stream does not have.
	wantExit(t, kctl(t, "split", stream, "99"), exitNotFound, "shardId-000000000099", "kinesisctl shards "+stream)
	wantExit(t, kctl(t, "merge", stream, "0", "99"), exitNotFound, "shardId-000000000099")
	// --at outside the shard's range, and at its very start.
	wantExit(t, kctl(t, "split", stream, "0", "--at", shards[2].StartingHashKey), exitUsage, "outside")
	wantExit(t, kctl(t, "split", stream, "0", "--at", shards[0].StartingHashKey), exitUsage, "outside")

	r1 := rangeOf(t, shards[1])
	at := next(r1.Start).String() // the smallest split point
	split := decode[struct {
		At       string      `json:"at"`
		Children []shardInfo `json:"children"`
	}](t, mustRun(t, "split", stream, shards[1].ShardID, "--at", at, "--json"))
	if split.At != at || len(split.Children) != 2 {
		t.Fatalf("split --at: %+v", split)
	}
	checkCover(t, split.Children, r1.Start, r1.End)
	for _, c := range split.Children {
		if c.StartingHashKey == shards[1].StartingHashKey && c.EndingHashKey != shards[1].StartingHashKey {
			t.Errorf("first child %s..%s, want it to hold only hash key %s", c.StartingHashKey, c.EndingHashKey, shards[1].StartingHashKey)
		}
	}
}

func TestScale(t *testing.T) {
	t.Parallel()
	_, stream := testenv.NewStream(t, 2)
	r := decode[struct {
		From       int32       `json:"from"`
		To         int32       `json:"to"`
		OpenShards []shardInfo `json:"openShards"`
	}](t, mustRun(t, "scale", stream, "4", "--json"))
	if r.From != 2 || r.To != 4 || len(r.OpenShards) != 4 {
		t.Fatalf("scale 2 -> 4: %+v", r)
	}
	checkCover(t, r.OpenShards, hashkey.Key{}, hashkey.Max)
	for _, s := range r.OpenShards {
		if s.KeyspacePercent < 24.9 || s.KeyspacePercent > 25.1 {
			t.Errorf("shard %s holds %.2f%% of the key space, want 25%%", s.ShardID, s.KeyspacePercent)
		}
	}
	info := decode[streamInfo](t, mustRun(t, "stream", "describe", stream, "--json"))
	if *info.OpenShards != 4 {
		t.Errorf("describe after scale: %d open shards, want 4", *info.OpenShards)
	}
}
