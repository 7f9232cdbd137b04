package kinesistest

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// GetShardIterator returns an iterator of the shard, valid for five
// minutes, at the position its type names: TRIM_HORIZON (the oldest record
// within retention), LATEST (after the newest record), AT_SEQUENCE_NUMBER
// and AFTER_SEQUENCE_NUMBER (a sequence number of this shard), or
// AT_TIMESTAMP (the first record that arrived at or after Timestamp, which
// must not be in the future). A shard that does not exist or aged out
// answers ResourceNotFoundException.
func (s *Stream) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	out, err := s.getShardIterator(ctx, in)
	if err != nil {
		return nil, opError(OpGetShardIterator, err)
	}
	return out, nil
}

func (s *Stream) getShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput) (*kinesis.GetShardIteratorOutput, error) {
	switch {
	case in == nil || in.ShardId == nil:
		return nil, paramRequired("GetShardIteratorInput", "ShardId")
	case in.ShardIteratorType == "":
		return nil, paramRequired("GetShardIteratorInput", "ShardIteratorType")
	}
	c, err := s.start(ctx, OpGetShardIterator, *in.ShardId, in)
	if err != nil {
		return nil, err
	}
	if err := s.gate(ctx, c); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkStream(in.StreamName, in.StreamARN); err != nil {
		return nil, err
	}
	now := s.now()
	id := *in.ShardId
	if !namePattern.MatchString(id) {
		return nil, validation("Value '%s' at 'shardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128", id)
	}
	sh := s.byID[id]
	if sh == nil || s.agedOut(sh, now) {
		return nil, notFound("Shard %s in stream %s under account %s does not exist", id, s.name, account)
	}
	t := in.ShardIteratorType
	bySeq := t == types.ShardIteratorTypeAtSequenceNumber || t == types.ShardIteratorTypeAfterSequenceNumber
	switch {
	case in.StartingSequenceNumber != nil && !bySeq:
		return nil, invalidArgument("Request for iterator type %s should not provide a StartingSequenceNumber.", t)
	case in.Timestamp != nil && t != types.ShardIteratorTypeAtTimestamp:
		return nil, invalidArgument("Request for iterator type %s should not provide a Timestamp.", t)
	}
	var pos int
	switch t {
	case types.ShardIteratorTypeTrimHorizon:
		pos = 0
	case types.ShardIteratorTypeLatest:
		pos = sh.len()
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		if in.StartingSequenceNumber == nil {
			return nil, invalidArgument("Request for iterator type %s must provide a StartingSequenceNumber.", t)
		}
		seq, num, err := parseSeq(*in.StartingSequenceNumber)
		if err != nil || num != sh.num {
			return nil, invalidArgument("StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid because it did not come from this stream.",
				*in.StartingSequenceNumber, id, s.name, account)
		}
		pos = sort.Search(sh.len(), func(i int) bool {
			if t == types.ShardIteratorTypeAtSequenceNumber {
				return sh.counterAt(i) >= seq
			}
			return sh.counterAt(i) > seq
		})
	case types.ShardIteratorTypeAtTimestamp:
		if in.Timestamp == nil {
			return nil, invalidArgument("Request for iterator type %s must provide a Timestamp.", t)
		}
		if in.Timestamp.After(now) {
			return nil, invalidArgument("The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: %d, currentTimestampInMillis: %d",
				in.Timestamp.UnixMilli(), now.UnixMilli())
		}
		pos = sh.firstAtOrAfter(*in.Timestamp)
	default:
		return nil, validation("Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]", t)
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(s.iterator(sh.num, pos, now))}, nil
}

// counterAt returns the sequence counter of the record at position i.
func (sh *shard) counterAt(i int) uint64 {
	if i < sh.synthN {
		return sh.synthBase + 1 + uint64(i)
	}
	return sh.records[i-sh.synthN].seq
}

// arrivalAt returns the arrival time of the record at position i.
func (sh *shard) arrivalAt(i int) time.Time {
	if i < sh.synthN {
		return sh.synthAt
	}
	return sh.records[i-sh.synthN].at
}

// firstAtOrAfter returns the position of the first record that arrived at
// or after t.
func (sh *shard) firstAtOrAfter(t time.Time) int {
	pos := 0
	if sh.synthN > 0 && sh.synthAt.Before(t) {
		pos = sh.synthN
	}
	for pos < sh.len() && sh.arrivalAt(pos).Before(t) {
		pos++
	}
	return pos
}

// readRecords fills recs with the records from position pos on as
// GetRecords returns them.
func (sh *shard) readRecords(recs []types.Record, pos int) {
	synth := min(len(recs), max(0, sh.synthN-pos))
	if synth > 0 {
		sh.synthRecords(recs[:synth], pos)
	}
	for i := synth; i < len(recs); i++ {
		recs[i] = sh.recordAt(pos + i)
	}
}

// synthRecords fills recs with the synthetic records from position pos
// on. They share one partition key, data and arrival time, and their
// sequence numbers are cut from one string, so that a read allocates the
// same few objects whatever the number of records it returns.
func (sh *shard) synthRecords(recs []types.Record, pos int) {
	var b strings.Builder
	b.Grow(len(recs) * seqLen)
	var buf [seqLen]byte
	for i := range recs {
		b.Write(appendSeq(buf[:0], sh.counterAt(pos+i), sh.num))
	}
	all := b.String()
	seqs := make([]string, len(recs))
	pk, at := aws.String(syntheticKey), aws.Time(sh.synthAt)
	for i := range recs {
		seqs[i] = all[i*seqLen : (i+1)*seqLen]
		recs[i] = types.Record{SequenceNumber: &seqs[i], PartitionKey: pk, Data: sh.synthData, ApproximateArrivalTimestamp: at}
	}
}

// recordAt returns the stored record at position i (at or after
// sh.synthN) as GetRecords returns it.
func (sh *shard) recordAt(i int) types.Record {
	r := &sh.records[i-sh.synthN]
	return types.Record{
		SequenceNumber: aws.String(r.seqStr), PartitionKey: aws.String(r.pk),
		Data: append([]byte(nil), r.data...), ApproximateArrivalTimestamp: aws.Time(r.at),
	}
}

// dataLen returns the data size of the record at position i.
func (sh *shard) dataLen(i int) int {
	if i < sh.synthN {
		return len(sh.synthData)
	}
	return len(sh.records[i-sh.synthN].data)
}

// An iterator is the stream's name, the shard's number, the position of
// the next record in the shard and the time the iterator was made.
func (s *Stream) iterator(num, pos int, now time.Time) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s|%d|%d|%d", s.name, num, pos, now.UnixNano()))
}

func (s *Stream) parseIterator(it string) (num, pos int, made time.Time, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(it)
	if err != nil {
		return 0, 0, time.Time{}, false
	}
	f := strings.Split(string(b), "|")
	if len(f) != 4 || f[0] != s.name {
		return 0, 0, time.Time{}, false
	}
	num, err1 := strconv.Atoi(f[1])
	pos, err2 := strconv.Atoi(f[2])
	nanos, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || num < 0 || pos < 0 {
		return 0, 0, time.Time{}, false
	}
	return num, pos, time.Unix(0, nanos), true
}

// GetRecords returns the records at the iterator: at most Limit (1 to
// 10,000; default 10,000) and, past the first, at most 10 MiB of data. At
// the end of a closed shard NextShardIterator is nil and ChildShards names
// the shard's children. MillisBehindLatest is 0 when the response reaches
// the newest record, else the age of the oldest record not returned. An
// iterator older than five minutes answers ExpiredIteratorException.
func (s *Stream) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out, err := s.getRecords(ctx, in)
	if err != nil {
		return nil, opError(OpGetRecords, err)
	}
	return out, nil
}

func (s *Stream) getRecords(ctx context.Context, in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	if in == nil || in.ShardIterator == nil {
		return nil, paramRequired("GetRecordsInput", "ShardIterator")
	}
	num, pos, made, ok := s.parseIterator(*in.ShardIterator)
	shardID := ""
	if ok {
		shardID = fmt.Sprintf("shardId-%012d", num)
	}
	c, err := s.start(ctx, OpGetRecords, shardID, in)
	if err != nil {
		return nil, err
	}
	if err := s.gate(ctx, c); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.StreamARN != nil && *in.StreamARN != s.arn {
		return nil, notFound("Stream %s not found.", *in.StreamARN)
	}
	limit := maxGetRecordsLimit
	if in.Limit != nil {
		limit = int(*in.Limit)
		if limit < 1 || limit > maxGetRecordsLimit {
			return nil, validation("Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", limit, maxGetRecordsLimit)
		}
	}
	if !ok || num >= len(s.shards) || pos > s.shards[num].len() {
		return nil, invalidArgument("Invalid ShardIterator.")
	}
	sh := s.shards[num]
	now := s.now()
	if now.Sub(made) > iteratorLifetime {
		return nil, NewError(http.StatusBadRequest, "ExpiredIteratorException", fmt.Sprintf(
			"Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			made.UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123), iteratorLifetime.Milliseconds()))
	}
	if s.agedOut(sh, now) {
		return nil, notFound("Shard %s in stream %s under account %s does not exist", sh.id, s.name, account)
	}
	if pos < sh.synthN && s.trimmed(sh.synthAt, now) {
		pos = sh.synthN
	}
	for pos < sh.len() && s.trimmed(sh.arrivalAt(pos), now) {
		pos++
	}
	n, size := 0, 0
	for pos+n < sh.len() && n < limit {
		size += sh.dataLen(pos + n)
		if size > maxGetRecordsBytes && n > 0 {
			break
		}
		n++
	}
	out := &kinesis.GetRecordsOutput{Records: make([]types.Record, n), MillisBehindLatest: aws.Int64(0)}
	sh.readRecords(out.Records, pos)
	if end := pos + n; end < sh.len() {
		out.MillisBehindLatest = aws.Int64(max(0, now.Sub(sh.arrivalAt(end)).Milliseconds()))
	}
	if !sh.open() && pos+n == sh.len() {
		for _, id := range sh.children {
			c := s.byID[id]
			out.ChildShards = append(out.ChildShards, types.ChildShard{
				ShardId: aws.String(c.id), ParentShards: append([]string(nil), c.parents...), HashKeyRange: hashKeyRange(c),
			})
		}
		return out, nil
	}
	out.NextShardIterator = aws.String(s.iterator(sh.num, pos+n, now))
	return out, nil
}

func hashKeyRange(sh *shard) *types.HashKeyRange {
	return &types.HashKeyRange{StartingHashKey: aws.String(sh.rng.Start.String()), EndingHashKey: aws.String(sh.rng.End.String())}
}
