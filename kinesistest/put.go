package kinesistest

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// PutRecords writes records as Kinesis does: each entry to the open shard
// of its hash key, or fails it with the ErrorCode of Config.EntryFault.
// A request of more than 500 records, a partition key of more than 256
// characters or a record over MaxRecordSize answers ValidationException;
// a bad explicit hash key or a request over its size limit
// InvalidArgumentException.
func (s *Stream) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out, err := s.putRecords(ctx, OpPutRecords, in, in)
	if err != nil {
		return nil, opError(OpPutRecords, err)
	}
	return out, nil
}

// PutRecord writes one record as PutRecords does; a failure that
// Config.EntryFault injects is the call's error, with that code.
func (s *Stream) PutRecord(ctx context.Context, in *kinesis.PutRecordInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordOutput, error) {
	if in == nil {
		in = &kinesis.PutRecordInput{}
	}
	if in.Data == nil {
		return nil, opError(OpPutRecord, paramRequired("PutRecordInput", "Data"))
	}
	out, err := s.putRecords(ctx, OpPutRecord, in, &kinesis.PutRecordsInput{
		StreamName: in.StreamName, StreamARN: in.StreamARN,
		Records: []types.PutRecordsRequestEntry{{Data: in.Data, PartitionKey: in.PartitionKey, ExplicitHashKey: in.ExplicitHashKey}},
	})
	if err == nil && out.Records[0].ErrorCode != nil {
		err = entryError(*out.Records[0].ErrorCode, aws.ToString(out.Records[0].ErrorMessage))
	}
	if err != nil {
		return nil, opError(OpPutRecord, err)
	}
	r := out.Records[0]
	return &kinesis.PutRecordOutput{ShardId: r.ShardId, SequenceNumber: r.SequenceNumber, EncryptionType: types.EncryptionTypeNone}, nil
}

// putRecords serves PutRecords, and PutRecord as a request of one record;
// orig is the caller's input.
func (s *Stream) putRecords(ctx context.Context, op Op, orig any, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
	if in == nil || in.Records == nil {
		return nil, paramRequired("PutRecordsInput", "Records")
	}
	for i, e := range in.Records {
		if e.Data == nil {
			return nil, paramRequired("PutRecordsInput", fmt.Sprintf("Records[%d].Data", i))
		}
	}
	c, err := s.start(ctx, op, "", orig)
	if err != nil {
		return nil, err
	}
	keys, verr := s.checkPut(in)
	var routed []*shard
	if verr == nil {
		routed = s.enterFlight(keys)
		defer s.leaveFlight(routed)
	}
	if err := s.gate(ctx, c); err != nil {
		return nil, err
	}
	if verr != nil {
		return nil, verr
	}
	codes := make([]string, len(in.Records))
	if s.entryFault != nil {
		for i, e := range in.Records {
			codes[i] = s.entryFault(PutEntry{
				Op: op, Call: c.N, Index: i, ShardID: routed[i].id,
				PartitionKey: aws.ToString(e.PartitionKey), ExplicitHashKey: aws.ToString(e.ExplicitHashKey), Data: e.Data,
			})
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := &kinesis.PutRecordsOutput{
		Records:        make([]types.PutRecordsResultEntry, len(in.Records)),
		EncryptionType: types.EncryptionTypeNone,
	}
	failed := int32(0)
	for i, e := range in.Records {
		sh := routed[i]
		if code := codes[i]; code != "" {
			failed++
			out.Records[i] = types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String(entryMessage(code, sh.id, s.name))}
			continue
		}
		if !sh.open() { // resharded while the call was under way
			if sh, err = s.route(keys[i]); err != nil {
				return nil, err
			}
		}
		seq := s.appendLocked(sh, aws.ToString(e.PartitionKey), e.ExplicitHashKey, e.Data, now)
		out.Records[i] = types.PutRecordsResultEntry{ShardId: aws.String(sh.id), SequenceNumber: aws.String(seq)}
	}
	out.FailedRecordCount = aws.Int32(failed)
	return out, nil
}

// checkPut validates a request as Kinesis does and returns the records'
// hash keys.
func (s *Stream) checkPut(in *kinesis.PutRecordsInput) ([]hashkey.Key, error) {
	if err := s.checkStream(in.StreamName, in.StreamARN); err != nil {
		return nil, err
	}
	if n := len(in.Records); n < 1 || n > maxPutRecords {
		return nil, validation("Value at 'records' failed to satisfy constraint: Member must have length between 1 and %d (has %d)", maxPutRecords, n)
	}
	keys := make([]hashkey.Key, len(in.Records))
	total := 0
	for i, e := range in.Records {
		if e.PartitionKey == nil {
			return nil, validation("Value null at 'records.%d.member.partitionKey' failed to satisfy constraint: Member must not be null", i+1)
		}
		pk := *e.PartitionKey
		if n := utf8.RuneCountInString(pk); n < 1 || n > maxPartitionKey {
			return nil, validation("Value at 'records.%d.member.partitionKey' failed to satisfy constraint: Member must have length between 1 and %d (has %d)", i+1, maxPartitionKey, n)
		}
		if size := len(e.Data) + len(pk); size > s.maxRecordSize {
			return nil, validation("Value at 'records.%d.member.data' failed to satisfy constraint: Member must have length less than or equal to %d (record of %d bytes with its partition key)", i+1, s.maxRecordSize, size)
		}
		k, err := hashKey(pk, e.ExplicitHashKey)
		if err != nil {
			return nil, err
		}
		keys[i] = k
		total += len(e.Data) + len(pk)
	}
	if limit := max(maxRequestSize, s.maxRecordSize); total > limit {
		return nil, invalidArgument("Records size exceeds %d bytes limit (request of %d bytes)", limit, total)
	}
	return keys, nil
}

// enterFlight routes the records and counts the request as in flight on
// each shard it writes to.
func (s *Stream) enterFlight(keys []hashkey.Key) []*shard {
	s.mu.Lock()
	defer s.mu.Unlock()
	routed := make([]*shard, len(keys))
	per := map[*shard]int{}
	for i, k := range keys {
		sh, err := s.route(k)
		if err != nil {
			sh = s.shards[0] // unreachable: the open shards cover every key
		}
		routed[i] = sh
		per[sh]++
	}
	for sh, n := range per {
		s.inflightShard[sh.id]++
		s.maxInflight = max(s.maxInflight, s.inflightShard[sh.id])
		s.maxEntries = max(s.maxEntries, n)
	}
	return routed
}

func (s *Stream) leaveFlight(routed []*shard) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[*shard]bool{}
	for _, sh := range routed {
		if !seen[sh] {
			seen[sh] = true
			s.inflightShard[sh.id]--
		}
	}
}
