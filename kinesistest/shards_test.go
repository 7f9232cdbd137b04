package kinesistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func id(n int) string { return fmt.Sprintf("shardId-%012d", n) }

func ids(ns ...int) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, id(n))
	}
	return out
}

// listAll lists every shard in of selects, following NextToken.
func listAll(t *testing.T, s *Stream, in *kinesis.ListShardsInput) []string {
	t.Helper()
	got := []string{}
	for {
		out, err := s.ListShards(context.Background(), in)
		if err != nil {
			t.Fatalf("ListShards(%+v): %v", in, err)
		}
		for _, sh := range out.Shards {
			got = append(got, aws.ToString(sh.ShardId))
		}
		if out.NextToken == nil {
			return got
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// reshardedStream returns a stream created at t0 with shards 0 and 1 and
// then resharded an hour apart each:
//
//	t0+1h  split 0 into 2 and 3
//	t0+2h  merge 3 and 1 into 4
//	t0+3h  split 4 into 5 and 6
//
// and the time is t0+4h.
func reshardedStream(t *testing.T) (*Stream, time.Time) {
	t.Helper()
	t0 := time.Now()
	s := newStream(t, Config{StreamName: "s", Shards: 2})
	time.Sleep(time.Hour)
	if a, b, err := s.Split(id(0)); err != nil || a != id(2) || b != id(3) {
		t.Fatalf("Split = %s, %s, %v", a, b, err)
	}
	time.Sleep(time.Hour)
	if c, err := s.Merge(id(3), id(1)); err != nil || c != id(4) {
		t.Fatalf("Merge = %s, %v", c, err)
	}
	time.Sleep(time.Hour)
	if _, _, err := s.Split(id(4)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Hour)
	return s, t0
}

func TestListShardsFilters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, t0 := reshardedStream(t)
		filter := func(ft types.ShardFilterType) *kinesis.ListShardsInput {
			return &kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: ft}}
		}
		at := func(ft types.ShardFilterType, d time.Duration) *kinesis.ListShardsInput {
			in := filter(ft)
			in.ShardFilter.Timestamp = aws.Time(t0.Add(d))
			return in
		}
		// Before any shard aged out: a stream younger than its retention
		// has its trim horizon at its creation.
		for _, tc := range []struct {
			name string
			in   *kinesis.ListShardsInput
			want []string
		}{
			{"no filter", &kinesis.ListShardsInput{StreamName: aws.String("s")}, ids(0, 1, 2, 3, 4, 5, 6)},
			{"AT_TRIM_HORIZON of a young stream", filter(types.ShardFilterTypeAtTrimHorizon), ids(0, 1)},
			{"FROM_TRIM_HORIZON", filter(types.ShardFilterTypeFromTrimHorizon), ids(0, 1, 2, 3, 4, 5, 6)},
		} {
			if got := listAll(t, s, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}

		if err := s.Expire(id(0)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			in   *kinesis.ListShardsInput
			want []string
		}{
			{"no filter", &kinesis.ListShardsInput{StreamName: aws.String("s")}, ids(1, 2, 3, 4, 5, 6)},
			{"by ARN", &kinesis.ListShardsInput{StreamARN: aws.String(s.ARN())}, ids(1, 2, 3, 4, 5, 6)},
			{"FROM_TRIM_HORIZON", filter(types.ShardFilterTypeFromTrimHorizon), ids(1, 2, 3, 4, 5, 6)},
			// The trim horizon moved past shard 0's end: the shards open
			// then are 1 and 0's children.
			{"AT_TRIM_HORIZON", filter(types.ShardFilterTypeAtTrimHorizon), ids(1, 2, 3)},
			{"AT_LATEST", filter(types.ShardFilterTypeAtLatest), ids(2, 5, 6)},
			{"AT_TIMESTAMP between reshards", at(types.ShardFilterTypeAtTimestamp, 90*time.Minute), ids(1, 2, 3)},
			{"AT_TIMESTAMP at a merge", at(types.ShardFilterTypeAtTimestamp, 2*time.Hour), ids(1, 2, 3, 4)},
			{"AT_TIMESTAMP now", at(types.ShardFilterTypeAtTimestamp, 4*time.Hour), ids(2, 5, 6)},
			{"FROM_TIMESTAMP", at(types.ShardFilterTypeFromTimestamp, 150*time.Minute), ids(2, 4, 5, 6)},
			{"FROM_TIMESTAMP before the trim horizon", at(types.ShardFilterTypeFromTimestamp, -time.Hour), ids(1, 2, 3, 4, 5, 6)},
			{"AFTER_SHARD_ID", &kinesis.ListShardsInput{StreamName: aws.String("s"),
				ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(id(3))}}, ids(4, 5, 6)},
			{"ExclusiveStartShardId", &kinesis.ListShardsInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String(id(4))}, ids(5, 6)},
			{"ExclusiveStartShardId and AT_LATEST", &kinesis.ListShardsInput{StreamName: aws.String("s"), ExclusiveStartShardId: aws.String(id(2)),
				ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}}, ids(5, 6)},
		} {
			if got := listAll(t, s, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
		// An aged-out shard cannot be read.
		_, err := s.GetShardIterator(context.Background(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"),
			ShardId: aws.String(id(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("GetShardIterator of an expired shard: %v, want ResourceNotFoundException", err)
		}

		// A day after the merge, shards 1 and 3 age out by retention.
		time.Sleep(24*time.Hour - 2*time.Hour + time.Minute)
		for _, tc := range []struct {
			name string
			in   *kinesis.ListShardsInput
			want []string
		}{
			{"FROM_TRIM_HORIZON", filter(types.ShardFilterTypeFromTrimHorizon), ids(2, 4, 5, 6)},
			{"AT_TRIM_HORIZON", filter(types.ShardFilterTypeAtTrimHorizon), ids(2, 4)},
			{"FROM_TIMESTAMP before the trim horizon", at(types.ShardFilterTypeFromTimestamp, 0), ids(2, 4, 5, 6)},
		} {
			if got := listAll(t, s, tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("a day later, %s: %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

func TestListShardsLineage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := reshardedStream(t)
		out, err := s.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("s")})
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]types.Shard{}
		for _, sh := range out.Shards {
			byID[aws.ToString(sh.ShardId)] = sh
		}
		for _, tc := range []struct {
			id, parent, adjacent string
			closed               bool
		}{
			{id(0), "", "", true}, {id(1), "", "", true}, {id(2), id(0), "", false}, {id(3), id(0), "", true},
			{id(4), id(3), id(1), true}, {id(5), id(4), "", false}, {id(6), id(4), "", false},
		} {
			sh := byID[tc.id]
			if aws.ToString(sh.ParentShardId) != tc.parent || aws.ToString(sh.AdjacentParentShardId) != tc.adjacent ||
				(sh.SequenceNumberRange.EndingSequenceNumber != nil) != tc.closed {
				t.Errorf("%s: parent %q adjacent %q ending %v; want %q %q closed %v", tc.id, aws.ToString(sh.ParentShardId),
					aws.ToString(sh.AdjacentParentShardId), aws.ToString(sh.SequenceNumberRange.EndingSequenceNumber), tc.parent, tc.adjacent, tc.closed)
			}
		}
		// The open shards cover the hash key range without gaps.
		r2, r5, r6 := byID[id(2)].HashKeyRange, byID[id(5)].HashKeyRange, byID[id(6)].HashKeyRange
		if aws.ToString(r2.StartingHashKey) != "0" || aws.ToString(r6.EndingHashKey) != "340282366920938463463374607431768211455" ||
			aws.ToString(r2.EndingHashKey) != "85070591730234615865843651857942052863" ||
			aws.ToString(r5.StartingHashKey) != "85070591730234615865843651857942052864" {
			t.Errorf("hash key ranges %v %v %v", *r2, *r5, *r6)
		}
	})
}

func TestListShardsPagination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := reshardedStream(t)
		ctx := context.Background()
		var pages [][]string
		in := &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(3)}
		for {
			out, err := s.ListShards(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			var page []string
			for _, sh := range out.Shards {
				page = append(page, aws.ToString(sh.ShardId))
			}
			pages = append(pages, page)
			if out.NextToken == nil {
				break
			}
			in = &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(3)}
		}
		if want := [][]string{ids(0, 1, 2), ids(3, 4, 5), ids(6)}; fmt.Sprint(pages) != fmt.Sprint(want) {
			t.Fatalf("pages %v, want %v", pages, want)
		}
		// The filter carries over to the following pages.
		first, err := s.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(1),
			ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
		if err != nil {
			t.Fatal(err)
		}
		if got := append(ids(2), listAll(t, s, &kinesis.ListShardsInput{NextToken: first.NextToken})...); !slices.Equal(got, ids(2, 5, 6)) {
			t.Fatalf("AT_LATEST pages %v", got)
		}

		for _, tc := range []struct {
			name string
			in   *kinesis.ListShardsInput
			code string
		}{
			{"NextToken with StreamName", &kinesis.ListShardsInput{NextToken: first.NextToken, StreamName: aws.String("s")}, "InvalidArgumentException"},
			{"NextToken with ShardFilter", &kinesis.ListShardsInput{NextToken: first.NextToken,
				ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}}, "InvalidArgumentException"},
			{"NextToken with ExclusiveStartShardId", &kinesis.ListShardsInput{NextToken: first.NextToken, ExclusiveStartShardId: aws.String(id(1))}, "InvalidArgumentException"},
			{"bad NextToken", &kinesis.ListShardsInput{NextToken: aws.String("nonsense")}, "InvalidArgumentException"},
			{"MaxResults 0", &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(0)}, "ValidationException"},
			{"MaxResults 10001", &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(10001)}, "ValidationException"},
			{"no stream", &kinesis.ListShardsInput{}, "ValidationException"},
			{"other stream", &kinesis.ListShardsInput{StreamName: aws.String("other")}, "ResourceNotFoundException"},
			{"AT_TIMESTAMP without Timestamp", &kinesis.ListShardsInput{StreamName: aws.String("s"),
				ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp}}, "InvalidArgumentException"},
			{"AFTER_SHARD_ID without ShardId", &kinesis.ListShardsInput{StreamName: aws.String("s"),
				ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId}}, "InvalidArgumentException"},
			{"unknown filter", &kinesis.ListShardsInput{StreamName: aws.String("s"),
				ShardFilter: &types.ShardFilter{Type: "SIDEWAYS"}}, "ValidationException"},
		} {
			if _, err := s.ListShards(ctx, tc.in); errorCode(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}

		// A NextToken expires after five minutes.
		time.Sleep(5*time.Minute + time.Second)
		_, err = s.ListShards(ctx, &kinesis.ListShardsInput{NextToken: first.NextToken})
		var expired *types.ExpiredNextTokenException
		if !errors.As(err, &expired) {
			t.Fatalf("ListShards with an old NextToken: %v, want ExpiredNextTokenException", err)
		}
	})
}

func TestListShardsPageSize(t *testing.T) {
	s := newStream(t, Config{Shards: 5, ListShardsPageSize: 2})
	out, err := s.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("test")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Shards) != 2 || out.NextToken == nil {
		t.Fatalf("first page: %d shards, NextToken %v", len(out.Shards), out.NextToken)
	}
	if got := listAll(t, s, &kinesis.ListShardsInput{StreamName: aws.String("test")}); !slices.Equal(got, ids(0, 1, 2, 3, 4)) {
		t.Fatalf("all pages: %v", got)
	}
	if n := len(s.ListShardsInputs()); n != 4 {
		t.Fatalf("%d ListShards inputs recorded, want 4", n)
	}
	if in := s.ListShardsInputs()[1]; in.NextToken != nil || aws.ToString(in.StreamName) != "test" {
		t.Fatalf("second input %+v, want the start of the second listing", in)
	}
}

func TestReshardErrors(t *testing.T) {
	s := newStream(t, Config{Shards: 3})
	ctx := context.Background()
	if _, _, err := s.Split(id(0)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"split a closed shard", func() error {
			_, err := s.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("test"), ShardToSplit: aws.String(id(0)), NewStartingHashKey: aws.String("5")})
			return err
		}, "InvalidArgumentException"},
		{"split at the shard's start", func() error {
			_, err := s.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("test"), ShardToSplit: aws.String(id(3)), NewStartingHashKey: aws.String("0")})
			return err
		}, "InvalidArgumentException"},
		{"split outside the shard", func() error {
			_, err := s.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("test"), ShardToSplit: aws.String(id(3)), NewStartingHashKey: aws.String("340282366920938463463374607431768211455")})
			return err
		}, "InvalidArgumentException"},
		{"split at a bad hash key", func() error {
			_, err := s.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("test"), ShardToSplit: aws.String(id(3)), NewStartingHashKey: aws.String("x")})
			return err
		}, "InvalidArgumentException"},
		{"split an unknown shard", func() error {
			_, err := s.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("test"), ShardToSplit: aws.String(id(99)), NewStartingHashKey: aws.String("5")})
			return err
		}, "ResourceNotFoundException"},
		{"split in another stream", func() error {
			_, err := s.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("other"), ShardToSplit: aws.String(id(3)), NewStartingHashKey: aws.String("5")})
			return err
		}, "ResourceNotFoundException"},
		{"merge shards that are not adjacent", func() error {
			_, err := s.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("test"), ShardToMerge: aws.String(id(3)), AdjacentShardToMerge: aws.String(id(2))})
			return err
		}, "InvalidArgumentException"},
		{"merge a closed shard", func() error {
			_, err := s.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("test"), ShardToMerge: aws.String(id(0)), AdjacentShardToMerge: aws.String(id(1))})
			return err
		}, "InvalidArgumentException"},
		{"merge a shard with itself", func() error {
			_, err := s.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("test"), ShardToMerge: aws.String(id(1)), AdjacentShardToMerge: aws.String(id(1))})
			return err
		}, "InvalidArgumentException"},
	} {
		if err := tc.call(); errorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	// Adjacent in either order; the child spans both.
	if _, err := s.MergeShards(ctx, &kinesis.MergeShardsInput{StreamARN: aws.String(s.ARN()), ShardToMerge: aws.String(id(1)), AdjacentShardToMerge: aws.String(id(4))}); err != nil {
		t.Fatal(err)
	}
	out, err := s.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("test"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sh := range out.Shards {
		got = append(got, fmt.Sprintf("%s %s..%s %s+%s", aws.ToString(sh.ShardId), aws.ToString(sh.HashKeyRange.StartingHashKey),
			aws.ToString(sh.HashKeyRange.EndingHashKey), aws.ToString(sh.ParentShardId), aws.ToString(sh.AdjacentParentShardId)))
	}
	want := []string{
		"shardId-000000000002 226854911280625642308916404954512140970..340282366920938463463374607431768211455 +",
		"shardId-000000000003 0..56713727820156410577229101238628035242 shardId-000000000000+",
		"shardId-000000000005 56713727820156410577229101238628035243..226854911280625642308916404954512140969 shardId-000000000001+shardId-000000000004",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("open shards\n%v\nwant\n%v", got, want)
	}
	if err := s.Expire(id(5)); err == nil {
		t.Fatal("Expire of an open shard succeeded")
	}
}

func TestDescribeStreamSummary(t *testing.T) {
	s := newStream(t, Config{StreamName: "s", Shards: 2, Retention: 48 * time.Hour})
	if _, _, err := s.Split(id(1)); err != nil {
		t.Fatal(err)
	}
	out, err := s.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(s.ARN())})
	if err != nil {
		t.Fatal(err)
	}
	d := out.StreamDescriptionSummary
	if aws.ToString(d.StreamName) != "s" || aws.ToString(d.StreamARN) != "arn:aws:kinesis:us-east-1:123456789012:stream/s" ||
		d.StreamStatus != types.StreamStatusActive || aws.ToInt32(d.OpenShardCount) != 3 || aws.ToInt32(d.RetentionPeriodHours) != 48 {
		t.Fatalf("summary %+v", d)
	}
	_, err = s.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("t")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("other stream: %v", err)
	}
}
