package kinesistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

func entries(n int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		out[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("key-%d", i)), Data: []byte(fmt.Sprintf("rec-%d", i))}
	}
	return out
}

func TestPutRecordsRouting(t *testing.T) {
	s := newStream(t, Config{StreamName: "s", Shards: 4})
	ranges := map[string]hashkey.Range{}
	out, err := s.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range out.Shards {
		r, err := hashkey.ParseRange(*sh.HashKeyRange.StartingHashKey, *sh.HashKeyRange.EndingHashKey)
		if err != nil {
			t.Fatal(err)
		}
		ranges[*sh.ShardId] = r
	}
	recs := entries(200)
	recs = append(recs,
		types.PutRecordsRequestEntry{PartitionKey: aws.String("x"), ExplicitHashKey: aws.String("0"), Data: []byte("low")},
		types.PutRecordsRequestEntry{PartitionKey: aws.String("x"), ExplicitHashKey: aws.String(hashkey.Max.String()), Data: []byte("high")},
	)
	res, err := s.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(res.FailedRecordCount) != 0 || len(res.Records) != len(recs) {
		t.Fatalf("FailedRecordCount %d, %d results", aws.ToInt32(res.FailedRecordCount), len(res.Records))
	}
	last := ""
	perShard := map[string]int{}
	for i, r := range res.Records {
		k := hashkey.FromPartitionKey(*recs[i].PartitionKey)
		if recs[i].ExplicitHashKey != nil {
			k = hashkey.MustParse(*recs[i].ExplicitHashKey)
		}
		if !ranges[*r.ShardId].Contains(k) {
			t.Fatalf("entry %d (key %v) on %s, range %v", i, k, *r.ShardId, ranges[*r.ShardId])
		}
		if seq := *r.SequenceNumber; len(seq) != 56 || seq <= last {
			t.Fatalf("entry %d: sequence number %s after %s", i, seq, last)
		} else {
			last = seq
		}
		perShard[*r.ShardId]++
	}
	if len(perShard) != 4 {
		t.Fatalf("records on %d shards, want 4: %v", len(perShard), perShard)
	}
	if a, b := *res.Records[200].ShardId, *res.Records[201].ShardId; a != id(0) || b != id(3) {
		t.Fatalf("explicit hash keys 0 and max on %s and %s", a, b)
	}
	// Stored as sent, in order.
	for shardID, n := range perShard {
		got := s.Records(shardID)
		if len(got) != n {
			t.Fatalf("%s holds %d records, want %d", shardID, len(got), n)
		}
		for _, r := range got {
			if want, _ := s.ShardFor(r.PartitionKey, r.ExplicitHashKey); want != shardID {
				t.Fatalf("%+v on %s, ShardFor says %s", r, shardID, want)
			}
		}
	}
	if got := s.Records(id(0)); got[len(got)-1].ExplicitHashKey != "0" || string(got[len(got)-1].Data) != "low" {
		t.Fatalf("last record of shard 0: %+v", got[len(got)-1])
	}
	if n := s.MaxEntriesPerShard(); n != slices.Max([]int{perShard[id(0)], perShard[id(1)], perShard[id(2)], perShard[id(3)]}) {
		t.Fatalf("MaxEntriesPerShard %d, per shard %v", n, perShard)
	}
}

func TestPutRecordsEntryFaults(t *testing.T) {
	var seen []PutEntry
	var mu sync.Mutex
	s := newStream(t, Config{Shards: 2, EntryFault: func(e PutEntry) string {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
		switch {
		case e.Index%3 == 0:
			return "ProvisionedThroughputExceededException"
		case e.Index%3 == 1 && e.Call == 1:
			return "InternalFailure"
		}
		return ""
	}})
	ctx := context.Background()
	for call := range 2 {
		res, err := s.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: entries(9)})
		if err != nil {
			t.Fatal(err)
		}
		wantFailed := 3
		if call == 1 {
			wantFailed = 6
		}
		if n := aws.ToInt32(res.FailedRecordCount); n != int32(wantFailed) {
			t.Fatalf("call %d: FailedRecordCount %d, want %d", call, n, wantFailed)
		}
		for i, r := range res.Records {
			switch {
			case i%3 == 0:
				if aws.ToString(r.ErrorCode) != "ProvisionedThroughputExceededException" || r.SequenceNumber != nil ||
					!strings.Contains(aws.ToString(r.ErrorMessage), "Rate exceeded for shard") {
					t.Fatalf("call %d entry %d: %+v", call, i, r)
				}
			case i%3 == 1 && call == 1:
				if aws.ToString(r.ErrorCode) != "InternalFailure" {
					t.Fatalf("call %d entry %d: %+v", call, i, r)
				}
			default:
				if r.ErrorCode != nil || r.SequenceNumber == nil || r.ShardId == nil {
					t.Fatalf("call %d entry %d: %+v", call, i, r)
				}
			}
		}
	}
	if n := len(s.AllRecords()); n != 6+3 {
		t.Fatalf("%d records stored, want 9", n)
	}
	if len(seen) != 18 || seen[17].Call != 1 || seen[17].Index != 8 || string(seen[17].Data) != "rec-8" || seen[17].Op != OpPutRecords {
		t.Fatalf("EntryFault saw %d entries, last %+v", len(seen), seen[len(seen)-1])
	}
	if want, _ := s.ShardFor("key-8", ""); seen[17].ShardID != want {
		t.Fatalf("entry routed to %s, ShardFor says %s", seen[17].ShardID, want)
	}
	// PutRecord: an injected entry failure is the call's error.
	_, err := s.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("test"), PartitionKey: aws.String("k"), Data: []byte("x")})
	var pt *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pt) || !awserr.IsThrottling(err) {
		t.Fatalf("PutRecord with a failing entry: %v", err)
	}
}

func TestPutValidation(t *testing.T) {
	s := newStream(t, Config{StreamName: "s"})
	ctx := context.Background()
	put := func(in *kinesis.PutRecordsInput) error {
		_, err := s.PutRecords(ctx, in)
		return err
	}
	big := make([]byte, 1<<20)
	for _, tc := range []struct {
		name string
		in   *kinesis.PutRecordsInput
		code string
	}{
		{"501 records", &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries(501)}, "ValidationException"},
		{"no records", &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{}}, "ValidationException"},
		{"no stream", &kinesis.PutRecordsInput{Records: entries(1)}, "ValidationException"},
		{"other stream", &kinesis.PutRecordsInput{StreamName: aws.String("t"), Records: entries(1)}, "ResourceNotFoundException"},
		{"other ARN", &kinesis.PutRecordsInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/t"), Records: entries(1)}, "ResourceNotFoundException"},
		{"bad explicit hash key", &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456"), Data: []byte("x")}}}, "InvalidArgumentException"},
		{"empty partition key", &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String(""), Data: []byte("x")}}}, "ValidationException"},
		{"partition key of 257", &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String(strings.Repeat("é", 257)), Data: []byte("x")}}}, "ValidationException"},
		{"record over 1 MiB", &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String("k"), Data: big}}}, "ValidationException"},
		{"request over 5 MiB", &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: slices.Repeat([]types.PutRecordsRequestEntry{
			{PartitionKey: aws.String("k"), Data: big[:1<<20-1]}}, 6)}, "InvalidArgumentException"},
	} {
		if err := put(tc.in); errorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	// Missing required members are refused before the call, as by the SDK.
	err := put(&kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k")}}})
	var ip smithy.InvalidParamsError
	if !errors.As(err, &ip) {
		t.Errorf("entry without Data: %v, want smithy.InvalidParamsError", err)
	}
	if n := s.Calls(OpPutRecords); n != 10 {
		t.Errorf("Calls(PutRecords) = %d, want 10 (the refused one not sent)", n)
	}
	// By ARN; the error is wrapped as the SDK wraps it.
	if err := put(&kinesis.PutRecordsInput{StreamARN: aws.String(s.ARN()), Records: entries(1)}); err != nil {
		t.Fatal(err)
	}
	err = put(&kinesis.PutRecordsInput{StreamName: aws.String("t"), Records: entries(1)})
	var oe *smithy.OperationError
	if !errors.As(err, &oe) || oe.Operation() != "PutRecords" || !awserr.IsFatal(err) {
		t.Fatalf("error %v is not an OperationError of PutRecords", err)
	}
	// A stream with a larger maximum record size takes larger requests.
	large := newStream(t, Config{MaxRecordSize: 6 << 20})
	if _, err := large.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k"), Data: make([]byte, 6<<20-1)}}}); err != nil {
		t.Fatalf("6 MiB record with MaxRecordSize 6 MiB: %v", err)
	}
}

func TestFaultAndCalls(t *testing.T) {
	var mu sync.Mutex
	var seen []Call
	s := newStream(t, Config{Fault: func(ctx context.Context, c Call) error {
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
		switch {
		case c.Op == OpPutRecords && c.N < 2:
			return ThroughputExceeded()
		case c.Op == OpListShards && c.N == 0:
			return LimitExceeded()
		case c.Op == OpGetRecords && c.N == 0:
			return InternalFailure()
		}
		return nil
	}})
	ctx := context.Background()
	in := &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: entries(3)}
	for i := range 3 {
		_, err := s.PutRecords(ctx, in)
		if (err != nil) != (i < 2) {
			t.Fatalf("PutRecords %d: %v", i, err)
		}
		var pt *types.ProvisionedThroughputExceededException
		if i < 2 && (!errors.As(err, &pt) || !awserr.IsThrottling(err)) {
			t.Fatalf("injected throttling: %v", err)
		}
	}
	_, err := s.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("test")})
	var le *types.LimitExceededException
	if !errors.As(err, &le) {
		t.Fatalf("ListShards: %v", err)
	}
	it, err := s.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("test"), ShardId: aws.String(id(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if errorCode(err) != "InternalFailure" || awserr.Classify(err) != awserr.Retryable {
		t.Fatalf("GetRecords: %v (%v)", err, awserr.Classify(err))
	}
	out, err := s.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(out.Records) != 3 {
		t.Fatalf("GetRecords after the fault: %v, %+v", err, out)
	}
	for op, want := range map[Op]int{OpPutRecords: 3, OpListShards: 1, OpGetShardIterator: 1, OpGetRecords: 2, OpSplitShard: 0} {
		if n := s.Calls(op); n != want {
			t.Errorf("Calls(%s) = %d, want %d", op, n, want)
		}
	}
	if n := len(s.GetRecordsTimes(id(0))); n != 2 {
		t.Errorf("%d GetRecords times on shard 0, want 2 (failed calls included)", n)
	}
	if n := s.IteratorCalls(types.ShardIteratorTypeTrimHorizon); n != 1 {
		t.Errorf("IteratorCalls(TRIM_HORIZON) = %d", n)
	}
	last := seen[len(seen)-1]
	if last.Op != OpGetRecords || last.N != 1 || last.ShardID != id(0) || last.Input.(*kinesis.GetRecordsInput) == nil {
		t.Errorf("last call %+v", last)
	}
}

func TestHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStream(t, Config{Shards: 2})
		ctx := context.Background()
		release := s.Hold(OpPutRecords, OpPutRecord)
		done := make(chan error, 1)
		go func() {
			_, err := s.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: entries(20)})
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("held PutRecords returned: %v", err)
		default:
		}
		if s.InFlight(id(0)) != 1 || s.InFlight(id(1)) != 1 || s.Calls(OpPutRecords) != 1 {
			t.Fatalf("in flight %d %d, calls %d while held", s.InFlight(id(0)), s.InFlight(id(1)), s.Calls(OpPutRecords))
		}
		// Other operations are not held.
		if _, err := s.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("test")}); err != nil {
			t.Fatal(err)
		}
		// A held call whose context ends fails with the context's error.
		cctx, cancel := context.WithCancel(ctx)
		cancelled := make(chan error, 1)
		go func() {
			_, err := s.PutRecord(cctx, &kinesis.PutRecordInput{StreamName: aws.String("test"), PartitionKey: aws.String("k"), Data: []byte("x")})
			cancelled <- err
		}()
		synctest.Wait()
		if s.MaxInFlight() != 2 {
			t.Fatalf("MaxInFlight %d with two calls held on one shard", s.MaxInFlight())
		}
		cancel()
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled held PutRecord: %v", err)
		}
		release()
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s.InFlight(id(0)) != 0 || len(s.AllRecords()) != 20 {
			t.Fatalf("after release: in flight %d, %d records", s.InFlight(id(0)), len(s.AllRecords()))
		}
		// A hold of every operation.
		release = s.Hold()
		go func() {
			_, err := s.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("test")})
			done <- err
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("DescribeStreamSummary not held")
		default:
		}
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestUserRecordsAndDiscard(t *testing.T) {
	s := newStream(t, Config{})
	var e aggregation.Encoder
	for i := range 3 {
		e.Add(aggregation.Record{PartitionKey: fmt.Sprintf("u%d", i), Data: []byte(fmt.Sprintf("d%d", i))})
	}
	aggSeq, err := s.PutTo(id(0), "a", e.Encode())
	if err != nil {
		t.Fatal(err)
	}
	_, plainSeq, err := s.Put("p", []byte("plain"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range s.UserRecords() {
		got = append(got, fmt.Sprintf("%s/%d %v %s=%s", u.SequenceNumber, u.SubSequenceNumber, u.Aggregated, u.PartitionKey, u.Data))
	}
	want := []string{aggSeq + "/0 true u0=d0", aggSeq + "/1 true u1=d1", aggSeq + "/2 true u2=d2", plainSeq + "/0 false p=plain"}
	if !slices.Equal(got, want) {
		t.Fatalf("user records\n%v\nwant\n%v", got, want)
	}

	d := newStream(t, Config{Discard: true})
	res, err := d.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: entries(10)})
	if err != nil || res.Records[9].SequenceNumber == nil {
		t.Fatalf("PutRecords with Discard: %v %+v", err, res)
	}
	if n := len(d.AllRecords()); n != 0 {
		t.Fatalf("%d records kept with Discard", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newStream(t, Config{Shards: 2})
	ctx := context.Background()
	var wg sync.WaitGroup
	var written atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				recs := entries(10)
				for j := range recs {
					recs[j].PartitionKey = aws.String(fmt.Sprintf("w%d-%d-%d", w, i, j))
				}
				res, err := s.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("test"), Records: recs})
				if err != nil {
					t.Error(err)
					return
				}
				written.Add(int64(len(res.Records)))
			}
		})
	}
	wg.Go(func() {
		for _, sh := range []string{id(0), id(1), id(2)} {
			if _, _, err := s.Split(sh); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() {
		for range 20 {
			if _, err := s.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("test")}); err != nil {
				t.Error(err)
			}
			_ = s.UserRecords()
		}
	})
	wg.Wait()
	if n := len(s.AllRecords()); int64(n) != written.Load() {
		t.Fatalf("%d records stored, %d written", n, written.Load())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Shards: -1},
		{StreamName: "bad name"},
		{StreamName: "a", StreamARN: "arn:aws:kinesis:us-east-1:1:stream/b"},
		{StreamARN: "arn:aws:s3:::bucket"},
		{Retention: -1},
		{MaxRecordSize: 11 << 20},
		{ListShardsPageSize: 1001},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
	s := newStream(t, Config{StreamARN: "arn:aws:kinesis:eu-west-1:111122223333:stream/orders"})
	if s.Name() != "orders" || s.ARN() != "arn:aws:kinesis:eu-west-1:111122223333:stream/orders" {
		t.Fatalf("name %q ARN %q", s.Name(), s.ARN())
	}
}
