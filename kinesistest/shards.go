package kinesistest

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// ListShards lists the stream's shards in the order they were created, as
// the Kinesis API reference describes ShardFilter:
//
//   - FROM_TRIM_HORIZON (the default): every shard within the retention
//     period.
//   - AT_TRIM_HORIZON: the shards open at the trim horizon; on a stream
//     younger than its retention period, the shards it was created with.
//   - AT_LATEST: the open shards.
//   - AT_TIMESTAMP: the shards created at or before Timestamp that closed
//     at or after it, or are open.
//   - FROM_TIMESTAMP: the shards that closed at or after Timestamp (or the
//     trim horizon, if later), and the open ones.
//   - AFTER_SHARD_ID: the shards within retention after ShardId.
//
// ExclusiveStartShardId leaves out the shards up to it. At most MaxResults
// shards (default and at most Config.ListShardsPageSize) are returned, with
// a NextToken when more remain; a call with NextToken must name neither the
// stream nor a filter (InvalidArgumentException), and a NextToken older
// than five minutes answers ExpiredNextTokenException.
func (s *Stream) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	out, err := s.listShards(ctx, in)
	if err != nil {
		return nil, opError(OpListShards, err)
	}
	return out, nil
}

// listQuery is what a ListShards call and its follow-ups select.
type listQuery struct {
	filter types.ShardFilterType
	ts     time.Time // AT_TIMESTAMP and FROM_TIMESTAMP
	after  string    // only shards after this ID ("" for all)
}

func (s *Stream) listShards(ctx context.Context, in *kinesis.ListShardsInput) (*kinesis.ListShardsOutput, error) {
	if in == nil {
		in = &kinesis.ListShardsInput{}
	}
	if in.ShardFilter != nil && in.ShardFilter.Type == "" {
		return nil, paramRequired("ListShardsInput", "ShardFilter.Type")
	}
	c, err := s.start(ctx, OpListShards, "", in)
	if err != nil {
		return nil, err
	}
	if err := s.gate(ctx, c); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	page := s.pageSize
	if in.MaxResults != nil {
		m := int(*in.MaxResults)
		if m < 1 || m > maxListShardsInput {
			return nil, validation("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", m, maxListShardsInput)
		}
		page = min(page, m)
	}
	var q listQuery
	if in.NextToken != nil {
		for _, p := range []struct {
			name string
			set  bool
		}{
			{"StreamName", in.StreamName != nil}, {"StreamARN", in.StreamARN != nil},
			{"ShardFilter", in.ShardFilter != nil}, {"ExclusiveStartShardId", in.ExclusiveStartShardId != nil},
		} {
			if p.set {
				return nil, invalidArgument("NextToken and %s cannot be provided together.", p.name)
			}
		}
		var made time.Time
		var ok bool
		if q, made, ok = s.parseToken(*in.NextToken); !ok {
			return nil, invalidArgument("Invalid NextToken.")
		}
		if now.Sub(made) > nextTokenLifetime {
			return nil, NewError(http.StatusBadRequest, "ExpiredNextTokenException", "The timestamp of the NextToken has expired.")
		}
	} else {
		if err := s.checkStream(in.StreamName, in.StreamARN); err != nil {
			return nil, err
		}
		if q, err = queryOf(in); err != nil {
			return nil, err
		}
	}
	out := &kinesis.ListShardsOutput{Shards: []types.Shard{}}
	for _, sh := range s.selectShards(q, now) {
		if len(out.Shards) == page {
			q.after = aws.ToString(out.Shards[page-1].ShardId)
			out.NextToken = aws.String(s.token(q, now))
			break
		}
		out.Shards = append(out.Shards, s.describeShard(sh))
	}
	return out, nil
}

// queryOf checks the filter and start of a first ListShards call.
func queryOf(in *kinesis.ListShardsInput) (listQuery, error) {
	q := listQuery{filter: types.ShardFilterTypeFromTrimHorizon}
	if id := in.ExclusiveStartShardId; id != nil {
		if !namePattern.MatchString(*id) {
			return q, validation("Value '%s' at 'exclusiveStartShardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128", *id)
		}
		q.after = *id
	}
	f := in.ShardFilter
	if f == nil {
		return q, nil
	}
	q.filter = f.Type
	switch f.Type {
	case types.ShardFilterTypeAfterShardId:
		switch {
		case f.ShardId == nil:
			return q, invalidArgument("ShardFilter of type AFTER_SHARD_ID must provide a ShardId.")
		case !namePattern.MatchString(*f.ShardId):
			return q, validation("Value '%s' at 'shardFilter.shardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128", *f.ShardId)
		}
		q.after = max(q.after, *f.ShardId)
	case types.ShardFilterTypeAtTimestamp, types.ShardFilterTypeFromTimestamp:
		if f.Timestamp == nil {
			return q, invalidArgument("ShardFilter of type %s must provide a Timestamp.", f.Type)
		}
		q.ts = *f.Timestamp
	case types.ShardFilterTypeAtTrimHorizon, types.ShardFilterTypeFromTrimHorizon, types.ShardFilterTypeAtLatest:
	default:
		return q, validation("Value '%s' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]", f.Type)
	}
	if f.ShardId != nil && f.Type != types.ShardFilterTypeAfterShardId {
		return q, invalidArgument("ShardFilter of type %s must not provide a ShardId.", f.Type)
	}
	if f.Timestamp != nil && f.Type != types.ShardFilterTypeAtTimestamp && f.Type != types.ShardFilterTypeFromTimestamp {
		return q, invalidArgument("ShardFilter of type %s must not provide a Timestamp.", f.Type)
	}
	return q, nil
}

// selectShards returns the shards q selects, in order.
func (s *Stream) selectShards(q listQuery, now time.Time) []*shard {
	horizon := s.horizonEvent(now)
	horizonTime := now.Add(-s.retention)
	if horizonTime.Before(s.created) {
		horizonTime = s.created
	}
	var out []*shard
	for _, sh := range s.shards {
		if s.agedOut(sh, now) || (q.after != "" && sh.id <= q.after) {
			continue
		}
		var in bool
		switch q.filter {
		case types.ShardFilterTypeAtLatest:
			in = sh.open()
		case types.ShardFilterTypeAtTrimHorizon:
			in = sh.born <= horizon && (sh.open() || sh.died > horizon)
		case types.ShardFilterTypeAtTimestamp:
			in = !sh.created.After(q.ts) && (sh.open() || !sh.closed.Before(q.ts))
		case types.ShardFilterTypeFromTimestamp:
			from := q.ts
			if from.Before(horizonTime) {
				from = horizonTime
			}
			in = sh.open() || !sh.closed.Before(from)
		default: // FROM_TRIM_HORIZON, AFTER_SHARD_ID
			in = true
		}
		if in {
			out = append(out, sh)
		}
	}
	return out
}

// horizonEvent returns the last change of the set of open shards at or
// before the trim horizon (0, the stream's creation, on a stream younger
// than its retention period), moved past the closing of every shard aged
// out by Expire.
func (s *Stream) horizonEvent(now time.Time) int {
	h := 0
	th := now.Add(-s.retention)
	for e, t := range s.events {
		if !t.After(th) {
			h = e
		}
	}
	for _, sh := range s.shards {
		if sh.expired {
			h = max(h, sh.died)
		}
	}
	return h
}

func (s *Stream) describeShard(sh *shard) types.Shard {
	out := types.Shard{
		ShardId:             aws.String(sh.id),
		HashKeyRange:        hashKeyRange(sh),
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String(seqString(sh.startSeq, sh.num))},
	}
	if len(sh.parents) > 0 {
		out.ParentShardId = aws.String(sh.parents[0])
	}
	if len(sh.parents) > 1 {
		out.AdjacentParentShardId = aws.String(sh.parents[1])
	}
	if !sh.open() {
		out.SequenceNumberRange.EndingSequenceNumber = aws.String(seqString(sh.endSeq, sh.num))
	}
	return out
}

// A NextToken is the stream's name, the query and the time it was made.
func (s *Stream) token(q listQuery, now time.Time) string {
	ts := ""
	if !q.ts.IsZero() {
		ts = strconv.FormatInt(q.ts.UnixNano(), 10)
	}
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s|%s|%s|%s|%d", s.name, q.filter, ts, q.after, now.UnixNano()))
}

func (s *Stream) parseToken(tok string) (q listQuery, made time.Time, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return q, made, false
	}
	f := strings.Split(string(b), "|")
	if len(f) != 5 || f[0] != s.name {
		return q, made, false
	}
	q.filter, q.after = types.ShardFilterType(f[1]), f[3]
	if f[2] != "" {
		ts, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return q, made, false
		}
		q.ts = time.Unix(0, ts)
	}
	nanos, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return q, made, false
	}
	return q, time.Unix(0, nanos), true
}

// SplitShard splits an open shard in two: the lower child holds the hash
// keys below NewStartingHashKey, the upper one the rest. NewStartingHashKey
// must be above the shard's StartingHashKey and at most its EndingHashKey.
// Both children have ParentShardId the shard, which closes. The split
// takes effect at once (the stream never shows UPDATING).
func (s *Stream) SplitShard(ctx context.Context, in *kinesis.SplitShardInput, _ ...func(*kinesis.Options)) (*kinesis.SplitShardOutput, error) {
	if err := s.reshard(ctx, OpSplitShard, in); err != nil {
		return nil, opError(OpSplitShard, err)
	}
	return &kinesis.SplitShardOutput{}, nil
}

// MergeShards merges two adjacent open shards (their hash key ranges
// touch) into one child with ParentShardId ShardToMerge and
// AdjacentParentShardId AdjacentShardToMerge; both parents close. The merge
// takes effect at once.
func (s *Stream) MergeShards(ctx context.Context, in *kinesis.MergeShardsInput, _ ...func(*kinesis.Options)) (*kinesis.MergeShardsOutput, error) {
	if err := s.reshard(ctx, OpMergeShards, in); err != nil {
		return nil, opError(OpMergeShards, err)
	}
	return &kinesis.MergeShardsOutput{}, nil
}

// reshard serves SplitShard and MergeShards.
func (s *Stream) reshard(ctx context.Context, op Op, in any) error {
	var shardID string
	var name, arn *string
	switch v := in.(type) {
	case *kinesis.SplitShardInput:
		if v == nil || v.ShardToSplit == nil || v.NewStartingHashKey == nil {
			return paramRequired("SplitShardInput", "ShardToSplit", "NewStartingHashKey")
		}
		shardID, name, arn = *v.ShardToSplit, v.StreamName, v.StreamARN
	case *kinesis.MergeShardsInput:
		if v == nil || v.ShardToMerge == nil || v.AdjacentShardToMerge == nil {
			return paramRequired("MergeShardsInput", "ShardToMerge", "AdjacentShardToMerge")
		}
		shardID, name, arn = *v.ShardToMerge, v.StreamName, v.StreamARN
	}
	c, err := s.start(ctx, op, shardID, in)
	if err != nil {
		return err
	}
	if err := s.gate(ctx, c); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkStream(name, arn); err != nil {
		return err
	}
	switch v := in.(type) {
	case *kinesis.SplitShardInput:
		k, err := hashkey.Parse(*v.NewStartingHashKey)
		if err != nil {
			return invalidArgument("NewStartingHashKey %q is not a hash key: a decimal integer in [0, 2^128-1].", *v.NewStartingHashKey)
		}
		_, _, err = s.splitLocked(shardID, k)
		return err
	case *kinesis.MergeShardsInput:
		_, err := s.mergeLocked(shardID, *v.AdjacentShardToMerge)
		return err
	}
	return nil
}

// DescribeStreamSummary describes the stream: always ACTIVE, provisioned,
// unencrypted, without consumers.
func (s *Stream) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	out, err := s.describeStreamSummary(ctx, in)
	if err != nil {
		return nil, opError(OpDescribeStreamSummary, err)
	}
	return out, nil
}

func (s *Stream) describeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput) (*kinesis.DescribeStreamSummaryOutput, error) {
	if in == nil {
		in = &kinesis.DescribeStreamSummaryInput{}
	}
	c, err := s.start(ctx, OpDescribeStreamSummary, "", in)
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
	open := int32(0)
	for _, sh := range s.shards {
		if sh.open() {
			open++
		}
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{
		StreamName:              aws.String(s.name),
		StreamARN:               aws.String(s.arn),
		StreamStatus:            types.StreamStatusActive,
		StreamModeDetails:       &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned},
		RetentionPeriodHours:    aws.Int32(int32(s.retention / time.Hour)),
		StreamCreationTimestamp: aws.Time(s.created),
		OpenShardCount:          aws.Int32(open),
		ConsumerCount:           aws.Int32(0),
		EncryptionType:          types.EncryptionTypeNone,
		EnhancedMonitoring:      []types.EnhancedMetrics{{ShardLevelMetrics: []types.MetricsName{}}},
	}}, nil
}
