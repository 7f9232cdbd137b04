package kpl

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// fakeKinesis is an in-memory stand-in for the two Kinesis calls the
// producer makes, for tests of the producer's logic.
type fakeKinesis struct {
	mu      sync.Mutex
	shards  []fakeShard // open shards, the answer to ListShards
	pageLen int         // ListShards page size; 0 = all in one page
	stored  map[string][]storedRecord
	seq     int
	discard bool // keep no records (benchmarks)

	listCalls, putCalls int
	listInputs          []kinesis.ListShardsInput

	// failShard, if set, fails every entry routed to that shard with
	// InternalFailure.
	failShard string
	failed    int
	// listFault, if set, returns an error for a ListShards call.
	listFault func(call int) error
	// entryFault, if set, returns an error code for an entry ("" = none).
	entryFault func(call, entry int) string
	// callFault, if set, returns an error for a whole call.
	callFault func(call int) error
	// gate, if set, blocks every PutRecords until it is closed.
	gate chan struct{}

	// inflight per shard, and the maximum seen, for PreserveOrder.
	inflight    map[string]int
	maxInflight int
	// entriesPerShardMax is the most entries for one shard in one request.
	entriesPerShardMax int
	// trace, if set, logs every entry's outcome.
	trace   []string
	tracing bool
}

type fakeShard struct {
	id  string
	rng hashkey.Range
}

type storedRecord struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey string
	Seq             string
	ShardID         string
}

// newFake returns a fake stream with n shards of equal hash ranges.
func newFake(n int) *fakeKinesis {
	f := &fakeKinesis{stored: map[string][]storedRecord{}, inflight: map[string]int{}}
	f.shards = evenShards(n, 0)
	return f
}

func evenShards(n, firstID int) []fakeShard {
	var out []fakeShard
	step := hashkey.Max.Big()
	step.Div(step, bigInt(n))
	for i := 0; i < n; i++ {
		start := new(bigIntT).Mul(step, bigInt(i))
		end := new(bigIntT).Mul(step, bigInt(i+1))
		end.Sub(end, bigInt(1))
		if i == n-1 {
			end = hashkey.Max.Big()
		}
		rng, err := hashkey.ParseRange(start.String(), end.String())
		if err != nil {
			panic(err)
		}
		out = append(out, fakeShard{id: fmt.Sprintf("shardId-%012d", firstID+i), rng: rng})
	}
	return out
}

func (f *fakeKinesis) setShards(s []fakeShard) {
	f.mu.Lock()
	f.shards = s
	f.mu.Unlock()
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCalls++
	f.listInputs = append(f.listInputs, *in)
	if f.listFault != nil {
		if err := f.listFault(f.listCalls - 1); err != nil {
			return nil, err
		}
	}
	start := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &start)
	}
	end := len(f.shards)
	if f.pageLen > 0 {
		end = min(start+f.pageLen, end)
	}
	out := &kinesis.ListShardsOutput{}
	for _, s := range f.shards[start:end] {
		out.Shards = append(out.Shards, types.Shard{
			ShardId: aws.String(s.id),
			HashKeyRange: &types.HashKeyRange{
				StartingHashKey: aws.String(s.rng.Start.String()),
				EndingHashKey:   aws.String(s.rng.End.String()),
			},
		})
	}
	if end < len(f.shards) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

func (f *fakeKinesis) route(k hashkey.Key) string {
	for _, s := range f.shards {
		if s.rng.Contains(k) {
			return s.id
		}
	}
	panic("no shard for key")
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	call := f.putCalls
	f.putCalls++
	gate := f.gate
	// Route every entry and count the shards it touches.
	ids := make([]string, len(in.Records))
	per := map[string]int{}
	for i, e := range in.Records {
		k := hashkey.FromPartitionKey(aws.ToString(e.PartitionKey))
		if e.ExplicitHashKey != nil {
			var err error
			if k, err = hashkey.Parse(*e.ExplicitHashKey); err != nil {
				f.mu.Unlock()
				return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
			}
		}
		ids[i] = f.route(k)
		per[ids[i]]++
	}
	for id, n := range per {
		f.inflight[id]++
		f.maxInflight = max(f.maxInflight, f.inflight[id])
		f.entriesPerShardMax = max(f.entriesPerShardMax, n)
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		for id := range per {
			f.inflight[id]--
		}
		f.mu.Unlock()
	}()

	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.callFault != nil {
		if err := f.callFault(call); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	for i, e := range in.Records {
		if f.failShard != "" && ids[i] == f.failShard {
			f.failed++
			out.Records[i] = types.PutRecordsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("injected")}
			continue
		}
		if f.entryFault != nil {
			if code := f.entryFault(call, i); code != "" {
				if f.tracing {
					f.trace = append(f.trace, fmt.Sprintf("call %d entry %d -> %s FAILED: %s", call, i, ids[i], describe(e.Data)))
				}
				out.Records[i] = types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("injected")}
				out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
				continue
			}
		}
		f.seq++
		seq := fmt.Sprintf("%056d", f.seq)
		if f.tracing {
			f.trace = append(f.trace, fmt.Sprintf("call %d entry %d -> %s seq %d: %s", call, i, ids[i], f.seq, describe(e.Data)))
		}
		if !f.discard {
			f.stored[ids[i]] = append(f.stored[ids[i]], storedRecord{
				Data: append([]byte(nil), e.Data...), PartitionKey: aws.ToString(e.PartitionKey),
				ExplicitHashKey: aws.ToString(e.ExplicitHashKey), Seq: seq, ShardID: ids[i],
			})
		}
		out.Records[i] = types.PutRecordsResultEntry{ShardId: aws.String(ids[i]), SequenceNumber: aws.String(seq)}
	}
	return out, nil
}

// userRecord is a user record read back from the fake.
type userRecord struct {
	PartitionKey string
	Data         string
	ShardID      string
	Seq          string
	Sub          uint64
}

// readBack deaggregates everything stored, shard by shard in sequence order.
func (f *fakeKinesis) readBack() []userRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.stored {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []userRecord
	for _, id := range ids {
		for _, r := range f.stored[id] {
			if recs, ok := aggregation.Decode(r.Data); ok {
				for _, u := range recs {
					out = append(out, userRecord{u.PartitionKey, string(u.Data), id, r.Seq, u.SubSequenceNumber})
				}
			} else {
				out = append(out, userRecord{r.PartitionKey, string(r.Data), id, r.Seq, 0})
			}
		}
	}
	return out
}

type bigIntT = big.Int

func bigInt(n int) *big.Int { return big.NewInt(int64(n)) }

func describe(data []byte) string {
	recs, ok := aggregation.Decode(data)
	if !ok {
		return string(data)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.PartitionKey+"="+string(r.Data))
	}
	return fmt.Sprint(out)
}
