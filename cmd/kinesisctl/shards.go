package main

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/spf13/cobra"
)

// shardInfo is the JSON form of a shard.
type shardInfo struct {
	ShardID                string   `json:"shardId"`
	State                  string   `json:"state"` // "open" or "closed"
	ParentShardID          string   `json:"parentShardId,omitempty"`
	AdjacentParentShardID  string   `json:"adjacentParentShardId,omitempty"`
	Children               []string `json:"children,omitempty"`
	StartingHashKey        string   `json:"startingHashKey"`
	EndingHashKey          string   `json:"endingHashKey"`
	KeyspacePercent        float64  `json:"keyspacePercent"`
	StartingSequenceNumber string   `json:"startingSequenceNumber,omitempty"`
	EndingSequenceNumber   string   `json:"endingSequenceNumber,omitempty"`

	rng hashkey.Range
}

func (s shardInfo) open() bool { return s.State == "open" }

func (a *app) shardsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shards STREAM",
		Short: "Show a stream's shards as a lineage tree: open/closed, hash ranges, parents",
		Long: `Show every shard of a stream still within its retention period, as a tree:
children of a split under their parent, the child of a merge under its first
parent (and named under the other). Closed shards are read-only; records are
written to open ones.`,
		Args: args("STREAM"),
	}
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		shards, err := listShards(ctx, client, argv[0])
		if err != nil {
			return err
		}
		return a.emit(shards, func(w io.Writer) error { return printShardTree(w, shards) })
	})
	return cmd
}

// listShards returns every shard of the stream, sorted by ID, with children
// filled in.
func listShards(ctx context.Context, client *kinesis.Client, stream string) ([]shardInfo, error) {
	var raw []kintypes.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, streamErr(stream, err)
		}
		raw = append(raw, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	shards := make([]shardInfo, 0, len(raw))
	index := map[string]int{}
	for _, s := range raw {
		info := shardInfo{
			ShardID:               aws.ToString(s.ShardId),
			State:                 "open",
			ParentShardID:         aws.ToString(s.ParentShardId),
			AdjacentParentShardID: aws.ToString(s.AdjacentParentShardId),
		}
		if s.HashKeyRange != nil {
			info.StartingHashKey = aws.ToString(s.HashKeyRange.StartingHashKey)
			info.EndingHashKey = aws.ToString(s.HashKeyRange.EndingHashKey)
			rng, err := hashkey.ParseRange(info.StartingHashKey, info.EndingHashKey)
			if err != nil {
				return nil, fmt.Errorf("shard %s: %w", info.ShardID, err)
			}
			info.rng = rng
			info.KeyspacePercent = keyspacePercent(rng)
		}
		if r := s.SequenceNumberRange; r != nil {
			info.StartingSequenceNumber = aws.ToString(r.StartingSequenceNumber)
			info.EndingSequenceNumber = aws.ToString(r.EndingSequenceNumber)
			if r.EndingSequenceNumber != nil {
				info.State = "closed"
			}
		}
		shards = append(shards, info)
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i].ShardID < shards[j].ShardID })
	for i, s := range shards {
		index[s.ShardID] = i
	}
	for _, s := range shards {
		for _, p := range []string{s.ParentShardID, s.AdjacentParentShardID} {
			if i, ok := index[p]; ok && p != "" {
				shards[i].Children = append(shards[i].Children, s.ShardID)
			}
		}
	}
	return shards, nil
}

var keyspace = new(big.Float).SetInt(new(big.Int).Lsh(big.NewInt(1), 128))

// keyspacePercent is the share of all hash keys that r covers, in percent.
func keyspacePercent(r hashkey.Range) float64 {
	width := new(big.Int).Sub(r.End.Big(), r.Start.Big())
	width.Add(width, big.NewInt(1))
	f, _ := new(big.Float).Quo(new(big.Float).SetInt(width), keyspace).Float64()
	return f * 100
}

// printShardTree prints shards as a tree: each shard under its parent (a
// merge child under its first parent, and a pointer to it under the other).
func printShardTree(w io.Writer, shards []shardInfo) error {
	index := map[string]int{}
	for i, s := range shards {
		index[s.ShardID] = i
	}
	t := newTable(w, "SHARD", "STATE", "KEYS", "STARTING HASH KEY", "ENDING HASH KEY", "PARENTS")
	var walk func(i int, prefix, branch string)
	walk = func(i int, prefix, branch string) {
		s := shards[i]
		parents := s.ParentShardID
		if s.AdjacentParentShardID != "" {
			parents += " + " + s.AdjacentParentShardID
		}
		t.row(prefix+branch+s.ShardID, s.State, strconv.FormatFloat(s.KeyspacePercent, 'f', 1, 64)+"%",
			s.StartingHashKey, s.EndingHashKey, parents)
		childPrefix := prefix
		switch branch {
		case "├─ ":
			childPrefix += "│  "
		case "└─ ":
			childPrefix += "   "
		}
		for n, c := range s.Children {
			b := "├─ "
			if n == len(s.Children)-1 {
				b = "└─ "
			}
			ci := index[c]
			if shards[ci].ParentShardID != s.ShardID && shards[ci].ParentShardID != "" {
				if _, ok := index[shards[ci].ParentShardID]; ok {
					// A merge child is shown in full under its first parent.
					t.row(childPrefix+b+"(merged into "+c+")", "", "", "", "", "")
					continue
				}
			}
			walk(ci, childPrefix, b)
		}
	}
	for i, s := range shards {
		if isRoot(s, index) {
			walk(i, "", "")
		}
	}
	return t.flush()
}

// isRoot reports whether no parent of s is among the listed shards (it has
// none, or they are past the retention period).
func isRoot(s shardInfo, index map[string]int) bool {
	for _, p := range []string{s.ParentShardID, s.AdjacentParentShardID} {
		if _, ok := index[p]; ok && p != "" {
			return false
		}
	}
	return true
}

var shardIDPattern = regexp.MustCompile(`^shardId-[0-9]{12}$`)

// parseShardID accepts a full shard ID (shardId-000000000003) or its number
// (3) and returns the full ID.
func parseShardID(s string) (string, error) {
	if shardIDPattern.MatchString(s) {
		return s, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil && n <= 999999999999 {
		return fmt.Sprintf("shardId-%012d", n), nil
	}
	return "", usageErr("bad shard ID %q: want shardId-000000000000 or its number (e.g. 3)", s)
}

// findShard returns the shard with the given ID, or a not-found error that
// says how to list the stream's shards.
func findShard(shards []shardInfo, stream, id string) (shardInfo, error) {
	for _, s := range shards {
		if s.ShardID == id {
			return s, nil
		}
	}
	return shardInfo{}, fail(exitNotFound, nil, "stream %q has no shard %s; list its shards with: kinesisctl shards %s", stream, id, stream)
}
