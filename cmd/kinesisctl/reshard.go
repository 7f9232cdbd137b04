package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/spf13/cobra"
)

func (a *app) splitCommand() *cobra.Command {
	var (
		at     string
		noWait bool
	)
	cmd := &cobra.Command{
		Use:   "split STREAM SHARD",
		Short: "Split an open shard in two (at the midpoint of its hash range by default)",
		Long: `Split an open shard in two. The first child takes the hash keys below the
split point, the second the split point and above. By default the split point
is just above the midpoint of the shard's hash range, so the children get
halves. SHARD is a shard ID (shardId-000000000003) or its number (3).`,
		Args: args("STREAM", "SHARD"),
	}
	cmd.Flags().StringVar(&at, "at", "", "hash key (decimal) that starts the second child; must lie in (start, end] of the shard's range")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the split has started instead of waiting until the stream is ACTIVE")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		stream := argv[0]
		id, err := parseShardID(argv[1])
		if err != nil {
			return err
		}
		var point hashkey.Key
		if at != "" {
			if point, err = parseHashKey("--at", at); err != nil {
				return err
			}
		}
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		shards, err := listShards(ctx, client, stream)
		if err != nil {
			return err
		}
		shard, err := findShard(shards, stream, id)
		if err != nil {
			return err
		}
		if !shard.open() {
			return fail(exitConflict, nil, "shard %s is closed (already split or merged); split one of its open descendants (kinesisctl shards %s)", id, stream)
		}
		if shard.rng.Start.Cmp(shard.rng.End) == 0 {
			return fail(exitConflict, nil, "shard %s covers a single hash key and cannot be split", id)
		}
		if at == "" {
			point = next(hashkey.Mid(shard.rng.Start, shard.rng.End))
		} else if point.Cmp(shard.rng.Start) <= 0 || point.Cmp(shard.rng.End) > 0 {
			return usageErr("--at %s is outside shard %s: it must be above %s and at most %s", at, id, shard.StartingHashKey, shard.EndingHashKey)
		}
		_, err = client.SplitShard(ctx, &kinesis.SplitShardInput{
			StreamName:         aws.String(stream),
			ShardToSplit:       aws.String(id),
			NewStartingHashKey: aws.String(point.String()),
		})
		if err != nil {
			return reshardErr(stream, err)
		}
		result := struct {
			Stream   string      `json:"stream"`
			Shard    string      `json:"shard"`
			At       string      `json:"at"`
			Children []shardInfo `json:"children"`
		}{Stream: stream, Shard: id, At: point.String(), Children: []shardInfo{}}
		if !noWait {
			after, err := shardsOnceActive(ctx, client, stream)
			if err != nil {
				return err
			}
			for _, s := range after {
				if s.ParentShardID == id && s.AdjacentParentShardID == "" {
					result.Children = append(result.Children, s)
				}
			}
		}
		return a.emit(result, func(w io.Writer) error {
			fmt.Fprintf(w, "split %s at hash key %s\n", id, point)
			if noWait {
				return nil
			}
			return printShardList(w, result.Children)
		})
	})
	return cmd
}

// parseHashKey reads a hash key given by flag: a decimal number in
// [0, 2^128-1].
func parseHashKey(flag, s string) (hashkey.Key, error) {
	k, err := hashkey.Parse(s)
	if err != nil {
		return hashkey.Key{}, usageErr("bad %s %q: want a decimal hash key in [0, 2^128-1]", flag, s)
	}
	return k, nil
}

func (a *app) mergeCommand() *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "merge STREAM SHARD SHARD",
		Short: "Merge two open shards with adjacent hash ranges into one",
		Args:  args("STREAM", "SHARD", "SHARD"),
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the merge has started instead of waiting until the stream is ACTIVE")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		stream := argv[0]
		id1, err := parseShardID(argv[1])
		if err != nil {
			return err
		}
		id2, err := parseShardID(argv[2])
		if err != nil {
			return err
		}
		if id1 == id2 {
			return usageErr("cannot merge shard %s with itself: name two adjacent shards", id1)
		}
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		shards, err := listShards(ctx, client, stream)
		if err != nil {
			return err
		}
		s1, err := findShard(shards, stream, id1)
		if err != nil {
			return err
		}
		s2, err := findShard(shards, stream, id2)
		if err != nil {
			return err
		}
		for _, s := range []shardInfo{s1, s2} {
			if !s.open() {
				return fail(exitConflict, nil, "shard %s is closed (already split or merged); merge open shards (kinesisctl shards %s)", s.ShardID, stream)
			}
		}
		// The lower range first: the API wants them adjacent, in either order,
		// and the child's ParentShardId is the first.
		if s2.rng.Start.Cmp(s1.rng.Start) < 0 {
			s1, s2 = s2, s1
		}
		if next(s1.rng.End) != s2.rng.Start {
			return fail(exitConflict, nil, "shards %s and %s are not adjacent (their hash ranges do not touch); see adjacent open shards with: kinesisctl shards %s",
				s1.ShardID, s2.ShardID, stream)
		}
		_, err = client.MergeShards(ctx, &kinesis.MergeShardsInput{
			StreamName:           aws.String(stream),
			ShardToMerge:         aws.String(s1.ShardID),
			AdjacentShardToMerge: aws.String(s2.ShardID),
		})
		if err != nil {
			return reshardErr(stream, err)
		}
		result := struct {
			Stream string     `json:"stream"`
			Shards []string   `json:"shards"`
			Child  *shardInfo `json:"child,omitempty"`
		}{Stream: stream, Shards: []string{s1.ShardID, s2.ShardID}}
		if !noWait {
			after, err := shardsOnceActive(ctx, client, stream)
			if err != nil {
				return err
			}
			for _, s := range after {
				if s.ParentShardID == s1.ShardID && s.AdjacentParentShardID == s2.ShardID {
					result.Child = &s
				}
			}
		}
		return a.emit(result, func(w io.Writer) error {
			fmt.Fprintf(w, "merged %s and %s\n", s1.ShardID, s2.ShardID)
			if result.Child == nil {
				return nil
			}
			return printShardList(w, []shardInfo{*result.Child})
		})
	})
	return cmd
}

func (a *app) scaleCommand() *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "scale STREAM N",
		Short: "Change the number of open shards to N (uniform scaling)",
		Long: `Change the number of open shards to N with UpdateShardCount (uniform scaling):
Kinesis splits and merges shards so that the N open shards cover equal parts
of the hash key space. AWS limits N to between half and double the current
count per call.`,
		Args: args("STREAM", "N"),
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once scaling has started instead of waiting until the stream is ACTIVE")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		stream := argv[0]
		var n int32
		if _, err := fmt.Sscan(argv[1], &n); err != nil || n < 1 || fmt.Sprint(n) != argv[1] {
			return usageErr("bad shard count %q: want a whole number of at least 1", argv[1])
		}
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		out, err := client.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
			StreamName:       aws.String(stream),
			TargetShardCount: aws.Int32(n),
			ScalingType:      kintypes.ScalingTypeUniformScaling,
		})
		if err != nil {
			return reshardErr(stream, err)
		}
		result := struct {
			Stream     string      `json:"stream"`
			From       int32       `json:"from"`
			To         int32       `json:"to"`
			OpenShards []shardInfo `json:"openShards"`
		}{Stream: stream, From: aws.ToInt32(out.CurrentShardCount), To: aws.ToInt32(out.TargetShardCount), OpenShards: []shardInfo{}}
		if !noWait {
			after, err := shardsOnceActive(ctx, client, stream)
			if err != nil {
				return err
			}
			for _, s := range after {
				if s.open() {
					result.OpenShards = append(result.OpenShards, s)
				}
			}
		}
		return a.emit(result, func(w io.Writer) error {
			fmt.Fprintf(w, "scaled %s from %d to %d open shards\n", stream, result.From, result.To)
			if noWait {
				return nil
			}
			return printShardList(w, result.OpenShards)
		})
	})
	return cmd
}

// reshardErr explains the errors resharding calls commonly get.
func reshardErr(stream string, err error) error {
	var inUse *kintypes.ResourceInUseException
	if errors.As(err, &inUse) {
		return fail(exitConflict, err, "stream %q is busy (another resharding or update is in progress): %s\nwait until it is ACTIVE (kinesisctl stream describe %s) and retry",
			stream, aws.ToString(inUse.Message), stream)
	}
	return streamErr(stream, err)
}

func printShardList(w io.Writer, shards []shardInfo) error {
	t := newTable(w, "SHARD", "STATE", "KEYS", "STARTING HASH KEY", "ENDING HASH KEY")
	for _, s := range shards {
		t.row(s.ShardID, s.State, fmt.Sprintf("%.1f%%", s.KeyspacePercent), s.StartingHashKey, s.EndingHashKey)
	}
	return t.flush()
}

// next returns k+1 (wrapping at 2^128, which callers rule out).
func next(k hashkey.Key) hashkey.Key {
	lo, carry := bits.Add64(k.Lo, 1, 0)
	return hashkey.Key{Hi: k.Hi + carry, Lo: lo}
}

// shardsOnceActive waits until a resharding is over (the stream is ACTIVE
// again) and lists the stream's shards as they are then.
func shardsOnceActive(ctx context.Context, client *kinesis.Client, stream string) ([]shardInfo, error) {
	if _, err := waitActive(ctx, client, stream); err != nil {
		return nil, err
	}
	return listShards(ctx, client, stream)
}
