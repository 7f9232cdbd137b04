package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// listPages lists the stream's shards through the proxy, following
// NextToken (alone, as follow-up calls must), and returns the shard
// indexes of each page.
func listPages(t *testing.T, client *kinesis.Client, stream string, in kinesis.ListShardsInput) [][]int {
	t.Helper()
	ctx := ctxT(t)
	in.StreamName = aws.String(stream)
	var pages [][]int
	for {
		if len(pages) > 20 {
			t.Fatal("ListShards: more than 20 pages")
		}
		out, err := client.ListShards(ctx, &in)
		if err != nil {
			t.Fatalf("ListShards: %v", err)
		}
		page := []int{}
		for _, s := range out.Shards {
			var i int
			if _, err := fmt.Sscanf(aws.ToString(s.ShardId), "shardId-%d", &i); err != nil {
				t.Fatalf("shard ID %q: %v", aws.ToString(s.ShardId), err)
			}
			page = append(page, i)
		}
		pages = append(pages, page)
		if out.NextToken == nil {
			return pages
		}
		in = kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: in.MaxResults}
	}
}

// waitShards waits until the emulator itself lists n shards and the
// stream is ACTIVE again after a resharding call.
func waitShards(t *testing.T, stream string, n int) {
	t.Helper()
	direct := testenv.KinesisClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.ReadyTimeout)
	defer cancel()
	if err := testenv.WaitStreamActive(ctx, direct, stream); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, fmt.Sprintf("%d shards in %s", n, stream), func() bool {
		out, err := direct.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
		return err == nil && len(out.Shards) == n
	})
	if err := testenv.WaitStreamActive(ctx, direct, stream); err != nil {
		t.Fatal(err)
	}
}

func filter(typ types.ShardFilterType) *types.ShardFilter { return &types.ShardFilter{Type: typ} }

func filterAt(typ types.ShardFilterType, ts time.Time) *types.ShardFilter {
	return &types.ShardFilter{Type: typ, Timestamp: aws.Time(ts)}
}

type listCase struct {
	name string
	in   kinesis.ListShardsInput
	want [][]int // shard indexes, page by page
}

func checkListings(t *testing.T, client *kinesis.Client, stream string, cases []listCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := listPages(t, client, stream, tc.in)
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("pages %v, want %v", got, tc.want)
			}
		})
	}
}

// TestShardLifecycleListShards builds, through a proxy with ShardLifecycle
// on a manual clock, a stream created at t0 with shards 0 and 1, splits
// shard 1 into 2 and 3 at t0+1h, merges 0 and 2 into 4 at t0+2h, and checks
// at t0+3h what each ListShards filter lists, as the Kinesis API reference
// defines them: before and after shard 1 is aged out by ExpireShard, and
// after a day, when the shards closed at t0+2h have passed the retention
// period.
func TestShardLifecycleListShards(t *testing.T) {
	t0 := time.Unix(1.7e9, 0)
	clock := testenv.NewClock(t0)
	p := proxy.StartForTest(t, proxy.Config{ShardLifecycle: true, NoLimits: true, Now: clock.Now})
	client := kinesisNoRetry(t, p)
	ctx := ctxT(t)
	stream := testenv.CreateStream(t, client, 2)
	h := func(hours float64) time.Time { return t0.Add(time.Duration(hours * float64(time.Hour))) }

	// A record in shard 1, which ages out later.
	if _, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"),
		ExplicitHashKey: aws.String("340282366920938463463374607431768211455"), Data: []byte("in shard 1")}); err != nil {
		t.Fatal(err)
	}

	clock.Advance(time.Hour)
	if _, err := client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(shardID(1)),
		NewStartingHashKey: aws.String("255211775190703847597530955573826158591")}); err != nil {
		t.Fatal(err)
	}
	waitShards(t, stream, 4)
	clock.Advance(time.Hour)
	if _, err := client.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream),
		ShardToMerge: aws.String(shardID(0)), AdjacentShardToMerge: aws.String(shardID(2))}); err != nil {
		t.Fatal(err)
	}
	waitShards(t, stream, 5)
	clock.Advance(time.Hour) // t0+3h

	iter1 := shardIterator(t, client, stream, 1)
	if n := len(getRecords(t, client, iter1)); n != 1 {
		t.Fatalf("shard 1 has %d records, want 1", n)
	}

	t.Run("all shards within retention", func(t *testing.T) {
		checkListings(t, client, stream, []listCase{
			{"no filter", kinesis.ListShardsInput{}, [][]int{{0, 1, 2, 3, 4}}},
			{"FROM_TRIM_HORIZON", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeFromTrimHorizon)}, [][]int{{0, 1, 2, 3, 4}}},
			{"AT_TRIM_HORIZON: the shards the stream was created with", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtTrimHorizon)}, [][]int{{0, 1}}},
			{"AT_LATEST", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtLatest)}, [][]int{{3, 4}}},
			{"AT_TIMESTAMP before the split", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeAtTimestamp, h(0.5))}, [][]int{{0, 1}}},
			{"AT_TIMESTAMP between split and merge", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeAtTimestamp, h(1.5))}, [][]int{{0, 2, 3}}},
			{"AT_TIMESTAMP after the merge", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeAtTimestamp, h(2.5))}, [][]int{{3, 4}}},
			{"FROM_TIMESTAMP between split and merge", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeFromTimestamp, h(1.5))}, [][]int{{0, 2, 3, 4}}},
			{"FROM_TIMESTAMP after the merge", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeFromTimestamp, h(2.5))}, [][]int{{3, 4}}},
			{"AFTER_SHARD_ID", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(shardID(2))}}, [][]int{{3, 4}}},
			{"ExclusiveStartShardId", kinesis.ListShardsInput{ExclusiveStartShardId: aws.String(shardID(1))}, [][]int{{2, 3, 4}}},
			{"MaxResults 2", kinesis.ListShardsInput{MaxResults: aws.Int32(2)}, [][]int{{0, 1}, {2, 3}, {4}}},
		})
	})

	if err := p.ExpireShard(ctx, stream, shardID(3)); err == nil {
		t.Error("ExpireShard of an open shard succeeded")
	}
	if err := p.ExpireShard(ctx, stream, shardID(9)); err == nil {
		t.Error("ExpireShard of an unknown shard succeeded")
	}
	if err := p.ExpireShard(ctx, stream, shardID(1)); err != nil {
		t.Fatal(err)
	}

	t.Run("shard 1 aged out", func(t *testing.T) {
		checkListings(t, client, stream, []listCase{
			{"no filter", kinesis.ListShardsInput{}, [][]int{{0, 2, 3, 4}}},
			{"AT_TRIM_HORIZON: the shards open when shard 1 closed", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtTrimHorizon)}, [][]int{{0, 2, 3}}},
			{"AT_LATEST", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtLatest)}, [][]int{{3, 4}}},
			{"AT_TIMESTAMP before the split", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeAtTimestamp, h(0.5))}, [][]int{{0}}},
			{"AT_TIMESTAMP between split and merge", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeAtTimestamp, h(1.5))}, [][]int{{0, 2, 3}}},
			{"FROM_TIMESTAMP before the split", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeFromTimestamp, h(0.5))}, [][]int{{0, 2, 3, 4}}},
			{"AFTER_SHARD_ID", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(shardID(0))}}, [][]int{{2, 3, 4}}},
			{"AT_TRIM_HORIZON after ExclusiveStartShardId", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtTrimHorizon), ExclusiveStartShardId: aws.String(shardID(0))}, [][]int{{2, 3}}},
			{"AT_TRIM_HORIZON, MaxResults 1", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtTrimHorizon), MaxResults: aws.Int32(1)}, [][]int{{0}, {2}, {3}}},
			{"MaxResults 3", kinesis.ListShardsInput{MaxResults: aws.Int32(3)}, [][]int{{0, 2, 3}, {4}}},
		})
	})

	t.Run("GetShardIterator of the aged-out shard", func(t *testing.T) {
		_, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: aws.String(shardID(1)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Errorf("GetShardIterator: got %v, want ResourceNotFoundException", err)
		}
		_, err = client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(iter1)})
		if !errors.As(err, &rnf) {
			t.Errorf("GetRecords with an earlier iterator: got %v, want ResourceNotFoundException", err)
		}
		for _, i := range []int{0, 2, 3, 4} {
			getRecords(t, client, shardIterator(t, client, stream, i))
		}
	})

	iter0 := shardIterator(t, client, stream, 0)
	// A day after the merge, shards 0 and 2 (closed at t0+2h) have passed the
	// retention period too.
	clock.Advance(24 * time.Hour)
	t.Run("a day later", func(t *testing.T) {
		checkListings(t, client, stream, []listCase{
			{"no filter", kinesis.ListShardsInput{}, [][]int{{3, 4}}},
			{"AT_TRIM_HORIZON", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtTrimHorizon)}, [][]int{{3, 4}}},
			{"AT_TIMESTAMP between split and merge", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeAtTimestamp, h(1.5))}, [][]int{{3}}},
			{"FROM_TIMESTAMP at creation", kinesis.ListShardsInput{ShardFilter: filterAt(types.ShardFilterTypeFromTimestamp, t0)}, [][]int{{3, 4}}},
		})
		_, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: aws.String(shardID(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Errorf("GetShardIterator of shard 0: got %v, want ResourceNotFoundException", err)
		}
		if _, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(iter0)}); !errors.As(err, &rnf) {
			t.Errorf("GetRecords of shard 0: got %v, want ResourceNotFoundException", err)
		}
		getRecords(t, client, shardIterator(t, client, stream, 3))
	})
}

// TestShardLifecycleNextToken checks NextToken's rules through the proxy:
// a follow-up call carries it alone, and it expires after 300 seconds.
func TestShardLifecycleNextToken(t *testing.T) {
	clock := testenv.NewClock(time.Unix(1.7e9, 0))
	p := proxy.StartForTest(t, proxy.Config{ShardLifecycle: true, Now: clock.Now})
	client := kinesisNoRetry(t, p)
	ctx := ctxT(t)
	stream := testenv.CreateStream(t, client, 2)
	out, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream), MaxResults: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Shards) != 1 || out.NextToken == nil {
		t.Fatalf("MaxResults 1: %d shards, NextToken %v", len(out.Shards), out.NextToken)
	}
	var invalid *types.InvalidArgumentException
	if _, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream), NextToken: out.NextToken}); !errors.As(err, &invalid) {
		t.Errorf("StreamName with NextToken: got %v, want InvalidArgumentException", err)
	}
	clock.Advance(301 * time.Second)
	var expired *types.ExpiredNextTokenException
	if _, err := client.ListShards(ctx, &kinesis.ListShardsInput{NextToken: out.NextToken}); !errors.As(err, &expired) {
		t.Errorf("NextToken after 301s: got %v, want ExpiredNextTokenException", err)
	}
	var rnf *types.ResourceNotFoundException
	if _, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream + "-none")}); !errors.As(err, &rnf) {
		t.Errorf("unknown stream: got %v, want ResourceNotFoundException", err)
	}
}

// TestShardLifecycleOffForwardsListShards checks that without
// ShardLifecycle the proxy forwards ListShards: the emulator's answer, which
// lists a split's children under AT_TRIM_HORIZON.
func TestShardLifecycleOffForwardsListShards(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{})
	client := kinesisNoRetry(t, p)
	ctx := ctxT(t)
	stream := testenv.CreateStream(t, client, 1)
	if _, err := client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(shardID(0)),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	waitShards(t, stream, 3)
	direct, err := testenv.KinesisClient(t).ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream), ShardFilter: filter(types.ShardFilterTypeAtTrimHorizon)})
	if err != nil {
		t.Fatal(err)
	}
	got := listPages(t, client, stream, kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtTrimHorizon)})
	if len(got) != 1 || len(got[0]) != len(direct.Shards) {
		t.Errorf("through the proxy %v, from the emulator %d shards", got, len(direct.Shards))
	}
	if err := p.ExpireShard(ctx, stream, shardID(0)); err == nil {
		t.Error("ExpireShard without ShardLifecycle succeeded")
	}
}

func shardIterator(t *testing.T, client *kinesis.Client, stream string, shard int) string {
	t.Helper()
	out, err := client.GetShardIterator(ctxT(t), &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
		ShardId: aws.String(shardID(shard)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatalf("GetShardIterator %s: %v", shardID(shard), err)
	}
	return aws.ToString(out.ShardIterator)
}

func getRecords(t *testing.T, client *kinesis.Client, iter string) []types.Record {
	t.Helper()
	out, err := client.GetRecords(ctxT(t), &kinesis.GetRecordsInput{ShardIterator: aws.String(iter)})
	if err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	return out.Records
}

// TestShardLifecycleStreamCreatedUpstream checks, on the real clock, a
// stream created on the emulator directly (its creation time comes from
// DescribeStreamSummary) and split through the proxy, and the HTTP control
// call POST /expire-shard.
func TestShardLifecycleStreamCreatedUpstream(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{ShardLifecycle: true})
	client := kinesisNoRetry(t, p)
	ctx := ctxT(t)
	_, stream := testenv.NewStream(t, 1)
	if _, err := client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(shardID(0)),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	waitShards(t, stream, 3)
	atTrimHorizon := kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtTrimHorizon)}
	checkListings(t, client, stream, []listCase{
		{"AT_TRIM_HORIZON: the shard the stream was created with", atTrimHorizon, [][]int{{0}}},
		{"AT_LATEST", kinesis.ListShardsInput{ShardFilter: filter(types.ShardFilterTypeAtLatest)}, [][]int{{1, 2}}},
		{"no filter", kinesis.ListShardsInput{}, [][]int{{0, 1, 2}}},
	})

	expire := func(method, query string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, p.URL()+"/expire-shard?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	q := func(stream, shard string) string { return url.Values{"stream": {stream}, "shard": {shard}}.Encode() }
	for _, c := range []struct {
		method, query string
		want          int
	}{
		{http.MethodGet, q(stream, shardID(0)), http.StatusMethodNotAllowed},
		{http.MethodPost, "stream=" + stream, http.StatusBadRequest},
		{http.MethodPost, q(stream+"-none", shardID(0)), http.StatusNotFound},
		{http.MethodPost, q(stream, shardID(7)), http.StatusNotFound},
		{http.MethodPost, q(stream, shardID(1)), http.StatusConflict}, // open
		{http.MethodPost, q(stream, shardID(0)), http.StatusNoContent},
	} {
		if got := expire(c.method, c.query); got != c.want {
			t.Errorf("%s /expire-shard?%s: HTTP %d, want %d", c.method, c.query, got, c.want)
		}
	}
	checkListings(t, client, stream, []listCase{
		{"AT_TRIM_HORIZON after shard 0 aged out", atTrimHorizon, [][]int{{1, 2}}},
		{"no filter after shard 0 aged out", kinesis.ListShardsInput{}, [][]int{{1, 2}}},
	})
}
