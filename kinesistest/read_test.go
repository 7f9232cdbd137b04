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

func iterator(t *testing.T, s *Stream, in kinesis.GetShardIteratorInput) *string {
	t.Helper()
	in.StreamName = aws.String(s.Name())
	out, err := s.GetShardIterator(context.Background(), &in)
	if err != nil {
		t.Fatalf("GetShardIterator(%s %s): %v", aws.ToString(in.ShardId), in.ShardIteratorType, err)
	}
	return out.ShardIterator
}

// readShard reads a shard from TRIM_HORIZON, limit records per call, to
// its end (or to its newest record, for an open one) and returns the
// sequence numbers and the last response.
func readShard(t *testing.T, s *Stream, shardID string, limit int32) ([]string, *kinesis.GetRecordsOutput) {
	t.Helper()
	it := iterator(t, s, kinesis.GetShardIteratorInput{ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	var seqs []string
	for {
		out, err := s.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(limit)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
		if out.NextShardIterator == nil || len(out.Records) == 0 {
			return seqs, out
		}
		it = out.NextShardIterator
	}
}

func TestGetRecordsAcrossSplitAndMerge(t *testing.T) {
	s := newStream(t, Config{})
	var want []string
	for i := range 25 {
		seq, err := s.PutTo(id(0), fmt.Sprint(i), []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, seq)
	}
	a, b, err := s.Split(id(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutTo(id(0), "k", nil); err == nil {
		t.Fatal("PutTo a closed shard succeeded")
	}
	got, last := readShard(t, s, id(0), 10)
	if !slices.Equal(got, want) {
		t.Fatalf("parent read %v\nwant %v", got, want)
	}
	if last.NextShardIterator != nil || len(last.ChildShards) != 2 {
		t.Fatalf("at the parent's end: NextShardIterator %v, ChildShards %+v", last.NextShardIterator, last.ChildShards)
	}
	for i, c := range last.ChildShards {
		if aws.ToString(c.ShardId) != []string{a, b}[i] || !slices.Equal(c.ParentShards, []string{id(0)}) || c.HashKeyRange == nil {
			t.Fatalf("child %d: %+v", i, c)
		}
	}
	if got, want := aws.ToString(last.ChildShards[1].HashKeyRange.StartingHashKey), "170141183460469231731687303715884105728"; got != want {
		t.Fatalf("right child starts at %s, want %s", got, want)
	}
	// Records written after the split go to the children.
	childSeqs := map[string][]string{}
	for i := range 20 {
		shardID, seq, err := s.Put(fmt.Sprint("after-", i), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		childSeqs[shardID] = append(childSeqs[shardID], seq)
	}
	if len(childSeqs[a]) == 0 || len(childSeqs[b]) == 0 || len(childSeqs[a])+len(childSeqs[b]) != 20 {
		t.Fatalf("records after the split: %v", childSeqs)
	}
	for _, c := range []string{a, b} {
		got, last := readShard(t, s, c, 100)
		if !slices.Equal(got, childSeqs[c]) || last.NextShardIterator == nil {
			t.Fatalf("child %s read %v (next %v), want %v", c, got, last.NextShardIterator, childSeqs[c])
		}
	}
	// The merged child is every parent's only child.
	m, err := s.Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		_, last := readShard(t, s, p, 100)
		if last.NextShardIterator != nil || len(last.ChildShards) != 1 || aws.ToString(last.ChildShards[0].ShardId) != m ||
			!slices.Equal(last.ChildShards[0].ParentShards, []string{a, b}) {
			t.Fatalf("end of %s: next %v, children %+v", p, last.NextShardIterator, last.ChildShards)
		}
	}
}

func TestShardIteratorTypes(t *testing.T) {
	c := newClock()
	s := newStream(t, Config{Now: c.Now})
	var seqs []string
	for i := range 5 {
		seq, err := s.PutTo(id(0), "k", []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
		c.Advance(time.Second)
	}
	first := func(in kinesis.GetShardIteratorInput) string {
		in.ShardId = aws.String(id(0))
		out, err := s.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: iterator(t, s, in), Limit: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) == 0 {
			return "none"
		}
		return aws.ToString(out.Records[0].SequenceNumber)
	}
	start := c.Now().Add(-5 * time.Second)
	for _, tc := range []struct {
		name string
		in   kinesis.GetShardIteratorInput
		want string
	}{
		{"TRIM_HORIZON", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon}, seqs[0]},
		{"LATEST", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeLatest}, "none"},
		{"AT_SEQUENCE_NUMBER", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seqs[2])}, seqs[2]},
		{"AFTER_SEQUENCE_NUMBER", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(seqs[2])}, seqs[3]},
		{"AFTER_SEQUENCE_NUMBER of the last", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(seqs[4])}, "none"},
		{"AT_TIMESTAMP of a record", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(start.Add(time.Second))}, seqs[1]},
		{"AT_TIMESTAMP between records", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(start.Add(1500 * time.Millisecond))}, seqs[2]},
		{"AT_TIMESTAMP before the first", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(start.Add(-time.Hour))}, seqs[0]},
	} {
		if got := first(tc.in); got != tc.want {
			t.Errorf("%s: first record %s, want %s", tc.name, got, tc.want)
		}
	}
	if n := s.IteratorCalls(types.ShardIteratorTypeAtTimestamp); n != 3 {
		t.Errorf("IteratorCalls(AT_TIMESTAMP) = %d, want 3", n)
	}
	if got := s.Records(id(0))[1].ArrivalTime; !got.Equal(start.Add(time.Second)) {
		t.Errorf("second record arrived at %v, want %v", got, start.Add(time.Second))
	}

	other, _, err := s.Split(id(0))
	if err != nil {
		t.Fatal(err)
	}
	otherSeq, err := s.PutTo(other, "k", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   kinesis.GetShardIteratorInput
		code string
	}{
		{"unknown shard", kinesis.GetShardIteratorInput{ShardId: aws.String(id(9)), ShardIteratorType: types.ShardIteratorTypeLatest}, "ResourceNotFoundException"},
		{"malformed shard id", kinesis.GetShardIteratorInput{ShardId: aws.String("shard 0"), ShardIteratorType: types.ShardIteratorTypeLatest}, "ValidationException"},
		{"other stream", kinesis.GetShardIteratorInput{StreamName: aws.String("other"), ShardId: aws.String(id(0)), ShardIteratorType: types.ShardIteratorTypeLatest}, "ResourceNotFoundException"},
		{"bad type", kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)), ShardIteratorType: "SOMEWHERE"}, "ValidationException"},
		{"sequence number of another shard", kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)),
			ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(otherSeq)}, "InvalidArgumentException"},
		{"not a sequence number", kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)),
			ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String("12x")}, "InvalidArgumentException"},
		{"no sequence number", kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber}, "InvalidArgumentException"},
		{"sequence number for LATEST", kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)),
			ShardIteratorType: types.ShardIteratorTypeLatest, StartingSequenceNumber: aws.String(seqs[0])}, "InvalidArgumentException"},
		{"timestamp in the future", kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)),
			ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(c.Now().Add(time.Minute))}, "InvalidArgumentException"},
	} {
		in := tc.in
		if in.StreamName == nil {
			in.StreamName = aws.String(s.Name())
		}
		if _, err := s.GetShardIterator(context.Background(), &in); errorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	for _, tc := range []struct {
		name string
		in   *kinesis.GetRecordsInput
		code string
	}{
		{"bad iterator", &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAA")}, "InvalidArgumentException"},
		{"limit 0", &kinesis.GetRecordsInput{ShardIterator: iterator(t, s, kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)),
			ShardIteratorType: types.ShardIteratorTypeLatest}), Limit: aws.Int32(0)}, "ValidationException"},
		{"limit 10001", &kinesis.GetRecordsInput{ShardIterator: iterator(t, s, kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)),
			ShardIteratorType: types.ShardIteratorTypeLatest}), Limit: aws.Int32(10001)}, "ValidationException"},
		{"other stream's ARN", &kinesis.GetRecordsInput{ShardIterator: iterator(t, s, kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)),
			ShardIteratorType: types.ShardIteratorTypeLatest}), StreamARN: aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/other")}, "ResourceNotFoundException"},
	} {
		if _, err := s.GetRecords(context.Background(), tc.in); errorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

func TestIteratorExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStream(t, Config{})
		ctx := context.Background()
		if _, err := s.PutTo(id(0), "k", []byte("x")); err != nil {
			t.Fatal(err)
		}
		it := iterator(t, s, kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		// Each response's NextShardIterator is valid for five minutes
		// from the response.
		next := it
		for range 3 {
			time.Sleep(4 * time.Minute)
			out, err := s.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
			if err != nil {
				t.Fatalf("iterator 4 minutes old: %v", err)
			}
			next = out.NextShardIterator
		}
		_, err := s.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		var expired *types.ExpiredIteratorException
		if !errors.As(err, &expired) {
			t.Fatalf("iterator 12 minutes old: %v, want ExpiredIteratorException", err)
		}
		time.Sleep(5*time.Minute + time.Millisecond)
		if _, err := s.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next}); !errors.As(err, &expired) {
			t.Fatalf("iterator 5 minutes and a millisecond old: %v, want ExpiredIteratorException", err)
		}
	})
}

func TestRecordsAgeOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStream(t, Config{Retention: 24 * time.Hour})
		if _, err := s.PutTo(id(0), "k", []byte("old")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(23 * time.Hour)
		newSeq, err := s.PutTo(id(0), "k", []byte("new"))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Hour)
		got, _ := readShard(t, s, id(0), 100)
		if !slices.Equal(got, []string{newSeq}) {
			t.Fatalf("read %v after the first record's retention, want only %s", got, newSeq)
		}
	})
}

func TestGetRecordsLimits(t *testing.T) {
	c := newClock()
	s := newStream(t, Config{Now: c.Now})
	for i := range 3 {
		if _, err := s.PutTo(id(0), "k", make([]byte, 4<<20)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			c.Advance(time.Second)
		}
	}
	c.Advance(2 * time.Second)
	it := iterator(t, s, kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	out, err := s.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	// The oldest record not returned arrived 2s ago.
	if len(out.Records) != 1 || aws.ToInt64(out.MillisBehindLatest) != 2000 {
		t.Fatalf("Limit 1: %d records, %d ms behind", len(out.Records), aws.ToInt64(out.MillisBehindLatest))
	}
	out, err = s.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: it})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 2 {
		t.Fatalf("%d records of 4 MiB in one response, want 2 (10 MiB cap)", len(out.Records))
	}
	out, err = s.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 1 || aws.ToInt64(out.MillisBehindLatest) != 0 || out.NextShardIterator == nil {
		t.Fatalf("last response: %d records, %d ms behind, next %v", len(out.Records), aws.ToInt64(out.MillisBehindLatest), out.NextShardIterator)
	}
	// Records read are copies.
	out.Records[0].Data[0] = 1
	if s.Records(id(0))[2].Data[0] != 0 {
		t.Fatal("modifying a record read modified the stream")
	}
}

func TestSynthetic(t *testing.T) {
	s := newStream(t, Config{Shards: 2})
	data := []byte("0123456789")
	if err := s.Synthetic(id(1), 25000, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Synthetic(id(1), 1, data); err == nil {
		t.Fatal("Synthetic twice on a shard succeeded")
	}
	after, err := s.PutTo(id(1), "k", []byte("stored"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readShard(t, s, id(1), 10000)
	if len(got) != 25001 || got[25000] != after || !slices.IsSorted(got) {
		t.Fatalf("read %d records, last %s (want %s), sorted %v", len(got), got[len(got)-1], after, slices.IsSorted(got))
	}
	out, err := s.GetRecords(context.Background(), &kinesis.GetRecordsInput{Limit: aws.Int32(2), ShardIterator: iterator(t, s,
		kinesis.GetShardIteratorInput{ShardId: aws.String(id(1)), ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(got[9999])})})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Records[0].SequenceNumber) != got[10000] || string(out.Records[1].Data) != string(data) {
		t.Fatalf("after record 9999: %+v", out.Records)
	}
	if n := len(s.Records(id(1))); n != 1 {
		t.Fatalf("Records reports %d, want only the stored one", n)
	}
}

// A read of synthetic records allocates a few objects whatever its size,
// and gives each record its own sequence number.
func TestSyntheticReadAllocations(t *testing.T) {
	s := newStream(t, Config{})
	if err := s.Synthetic(id(0), 1_000_000, []byte("x")); err != nil {
		t.Fatal(err)
	}
	it := iterator(t, s, kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	var out *kinesis.GetRecordsOutput
	read := func(limit int32) float64 {
		return testing.AllocsPerRun(10, func() {
			var err error
			if out, err = s.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(limit)}); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The slack covers the stream's log of call times, which grows now and
	// then, and the race detector's allocations.
	if few, many := read(10), read(10000); many > few+100 {
		t.Errorf("GetRecords allocates %v objects for 10 synthetic records, %v for 10,000: want about as many", few, many)
	}
	if len(out.Records) != 10000 {
		t.Fatalf("read %d records, want 10000", len(out.Records))
	}
	seqs := make([]string, len(out.Records))
	for i, r := range out.Records {
		seqs[i] = aws.ToString(r.SequenceNumber)
	}
	if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
		t.Fatalf("sequence numbers not increasing: %s ... %s", seqs[0], seqs[len(seqs)-1])
	}
	// The last one is the one an iterator after the one before finds.
	next, err := s.GetRecords(context.Background(), &kinesis.GetRecordsInput{Limit: aws.Int32(1), ShardIterator: iterator(t, s,
		kinesis.GetShardIteratorInput{ShardId: aws.String(id(0)), ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(seqs[9998])})})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(next.Records[0].SequenceNumber); got != seqs[9999] {
		t.Fatalf("record after %s = %s, want %s", seqs[9998], got, seqs[9999])
	}
}
