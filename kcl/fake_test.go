package kcl

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// fakeKinesis is an in-memory Kinesis stream for unit tests of the worker's
// logic: shards with records, iterators, closed shards with children, and
// injected errors.
type fakeKinesis struct {
	mu     sync.Mutex
	shards map[string]*fakeShard
	order  []string
	next   int64
	// getRecordsErr, when set, is consulted before every GetRecords; a
	// non-nil result fails the call.
	getRecordsErr func(shardID string) error
	// calls records the time of every GetRecords call per shard.
	calls map[string][]time.Time
	// iterCalls counts GetShardIterator calls by iterator type.
	iterCalls map[types.ShardIteratorType]int
	// noMillis leaves MillisBehindLatest unset.
	noMillis bool
}

// getRecordsMaxBytes is the most record data one GetRecords returns.
const getRecordsMaxBytes = 10 << 20

type fakeShard struct {
	id       string
	parents  []string
	rng      hashkey.Range
	start    string
	end      string
	records  []types.Record
	closed   bool
	children []string
	// synthetic, when positive, makes the shard hold that many records of
	// synthData, made up on each read (for benchmarks: no memory held).
	synthetic int
	synthData []byte
}

func newFakeKinesis(shards int) *fakeKinesis {
	f := &fakeKinesis{shards: map[string]*fakeShard{}, calls: map[string][]time.Time{}, iterCalls: map[types.ShardIteratorType]int{}}
	max := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(max, big.NewInt(int64(shards)))
	for i := 0; i < shards; i++ {
		lo := new(big.Int).Mul(step, big.NewInt(int64(i)))
		hi := new(big.Int).Sub(new(big.Int).Mul(step, big.NewInt(int64(i+1))), big.NewInt(1))
		if i == shards-1 {
			hi = new(big.Int).Sub(max, big.NewInt(1))
		}
		f.addShard(fmt.Sprintf("shardId-%012d", i), nil, lo.String(), hi.String())
	}
	return f
}

func (f *fakeKinesis) addShard(id string, parents []string, start, end string) *fakeShard {
	r, err := hashkey.ParseRange(start, end)
	if err != nil {
		panic(err)
	}
	s := &fakeShard{id: id, parents: parents, rng: r, start: start, end: end}
	f.shards[id] = s
	f.order = append(f.order, id)
	return s
}

func (f *fakeKinesis) seqLocked() string {
	f.next++
	return fmt.Sprintf("4959%020d", f.next)
}

// shardFor returns the open shard whose range holds key.
func (f *fakeKinesis) shardFor(k hashkey.Key) *fakeShard {
	for _, id := range f.order {
		s := f.shards[id]
		if !s.closed && s.rng.Contains(k) {
			return s
		}
	}
	panic("no open shard for key")
}

// put writes a plain record routed by its partition key and returns its
// shard and sequence number.
func (f *fakeKinesis) put(pk string, data []byte) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shardFor(hashkey.FromPartitionKey(pk))
	return s.id, f.appendLocked(s, pk, data)
}

// putTo writes a record to a given shard.
func (f *fakeKinesis) putTo(shardID, pk string, data []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appendLocked(f.shards[shardID], pk, data)
}

func (f *fakeKinesis) appendLocked(s *fakeShard, pk string, data []byte) string {
	seq := f.seqLocked()
	s.records = append(s.records, types.Record{
		SequenceNumber:              aws.String(seq),
		PartitionKey:                aws.String(pk),
		Data:                        data,
		ApproximateArrivalTimestamp: aws.Time(time.Now()),
	})
	return seq
}

// split closes a shard and opens two children splitting its range at the
// middle.
func (f *fakeKinesis) split(id string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.shards[id]
	p.closed = true
	mid := hashkey.Mid(p.rng.Start, p.rng.End)
	midNext := new(big.Int).Add(mid.Big(), big.NewInt(1))
	a := f.addShard(fmt.Sprintf("shardId-%012d", len(f.order)), []string{id}, p.start, mid.String())
	b := f.addShard(fmt.Sprintf("shardId-%012d", len(f.order)), []string{id}, midNext.String(), p.end)
	p.children = []string{a.id, b.id}
	return a.id, b.id
}

// merge closes two adjacent shards and opens one child covering both.
func (f *fakeKinesis) merge(id1, id2 string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, b := f.shards[id1], f.shards[id2]
	a.closed, b.closed = true, true
	c := f.addShard(fmt.Sprintf("shardId-%012d", len(f.order)), []string{id1, id2}, a.start, b.end)
	a.children = []string{c.id}
	b.children = []string{c.id}
	return c.id
}

func (f *fakeKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.iterCalls[in.ShardIteratorType]++
	s, ok := f.shards[aws.ToString(in.ShardId)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard " + aws.ToString(in.ShardId))}
	}
	idx := 0
	cmpSeq := func(i int) int {
		a, _ := new(big.Int).SetString(aws.ToString(s.records[i].SequenceNumber), 10)
		b, ok := new(big.Int).SetString(aws.ToString(in.StartingSequenceNumber), 10)
		if !ok {
			panic("bad sequence number " + aws.ToString(in.StartingSequenceNumber))
		}
		return a.Cmp(b)
	}
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		idx = len(s.records)
	case types.ShardIteratorTypeAtSequenceNumber:
		for idx < len(s.records) && cmpSeq(idx) < 0 {
			idx++
		}
	case types.ShardIteratorTypeAfterSequenceNumber:
		for idx < len(s.records) && cmpSeq(idx) <= 0 {
			idx++
		}
	case types.ShardIteratorTypeAtTimestamp:
		for idx < len(s.records) && s.records[idx].ApproximateArrivalTimestamp.Before(*in.Timestamp) {
			idx++
		}
	default:
		return nil, &types.InvalidArgumentException{Message: aws.String("bad iterator type")}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(fmt.Sprintf("%s/%d", s.id, idx))}, nil
}

func (f *fakeKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, pos, ok := strings.Cut(aws.ToString(in.ShardIterator), "/")
	idx, err := strconv.Atoi(pos)
	if !ok || err != nil {
		return nil, &types.InvalidArgumentException{Message: aws.String("bad iterator")}
	}
	f.mu.Lock()
	f.calls[id] = append(f.calls[id], time.Now())
	hook := f.getRecordsErr
	f.mu.Unlock()
	if hook != nil {
		if err := hook(id); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shards[id]
	if s.synthetic > 0 {
		n := min(s.synthetic-idx, int(aws.ToInt32(in.Limit)), max(1, getRecordsMaxBytes/max(1, len(s.synthData))))
		out := &kinesis.GetRecordsOutput{Records: make([]types.Record, n), NextShardIterator: aws.String(fmt.Sprintf("%s/%d", id, idx+n))}
		now := time.Now()
		for i := range out.Records {
			out.Records[i] = types.Record{SequenceNumber: aws.String(strconv.Itoa(1_000_000_000 + idx + i)), PartitionKey: aws.String("k"),
				Data: s.synthData, ApproximateArrivalTimestamp: &now}
		}
		return out, nil
	}
	n := min(len(s.records)-idx, int(aws.ToInt32(in.Limit)))
	for size, i := 0, 0; i < n; i++ { // at most 10 MiB per call, as Kinesis
		if size += len(s.records[idx+i].Data); size > getRecordsMaxBytes && i > 0 {
			n = i
		}
	}
	out := &kinesis.GetRecordsOutput{Records: append([]types.Record(nil), s.records[idx:idx+n]...)}
	if !f.noMillis {
		out.MillisBehindLatest = aws.Int64(int64(len(s.records) - idx - n))
	}
	if s.closed && idx+n == len(s.records) {
		for _, c := range s.children {
			cs := f.shards[c]
			out.ChildShards = append(out.ChildShards, types.ChildShard{
				ShardId: aws.String(c), ParentShards: cs.parents,
				HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(cs.start), EndingHashKey: aws.String(cs.end)},
			})
		}
		return out, nil
	}
	out.NextShardIterator = aws.String(fmt.Sprintf("%s/%d", id, idx+n))
	return out, nil
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &kinesis.ListShardsOutput{}
	for _, id := range f.order {
		s := f.shards[id]
		sh := types.Shard{
			ShardId:             aws.String(id),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(s.start), EndingHashKey: aws.String(s.end)},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")},
		}
		if len(s.parents) > 0 {
			sh.ParentShardId = aws.String(s.parents[0])
		}
		if len(s.parents) > 1 {
			sh.AdjacentParentShardId = aws.String(s.parents[1])
		}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = aws.String(fmt.Sprintf("4959%020d", f.next))
		}
		out.Shards = append(out.Shards, sh)
	}
	return out, nil
}
