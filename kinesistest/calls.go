package kinesistest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Op names an API operation, as AWS names it.
type Op string

// The operations a Stream serves.
const (
	OpPutRecords            Op = "PutRecords"
	OpPutRecord             Op = "PutRecord"
	OpListShards            Op = "ListShards"
	OpGetShardIterator      Op = "GetShardIterator"
	OpGetRecords            Op = "GetRecords"
	OpSplitShard            Op = "SplitShard"
	OpMergeShards           Op = "MergeShards"
	OpDescribeStreamSummary Op = "DescribeStreamSummary"
)

// Call is an API call as Config.Fault sees it.
type Call struct {
	// Op is the operation.
	Op Op
	// N is the number of earlier calls of Op: 0 for the first.
	N int
	// ShardID is the shard the call is about, for calls that name one:
	// GetShardIterator, GetRecords (from its iterator, "" when the
	// iterator is not valid), SplitShard, MergeShards (ShardToMerge).
	ShardID string
	// Input is the call's input, such as *kinesis.PutRecordsInput. It must
	// not be modified.
	Input any
}

// PutEntry is a record of a PutRecords or PutRecord call, as
// Config.EntryFault sees it.
type PutEntry struct {
	// Op is OpPutRecords or OpPutRecord.
	Op Op
	// Call is the call's Call.N.
	Call int
	// Index is the entry's position in the request (0 for PutRecord).
	Index int
	// ShardID is the shard the record is routed to.
	ShardID string
	// PartitionKey and ExplicitHashKey ("" for none) are the record's keys.
	PartitionKey, ExplicitHashKey string
	// Data is the record's data. It must not be modified.
	Data []byte
}

// hold is one Hold in force.
type hold struct {
	ops  []Op // nil: every operation
	done chan struct{}
}

// Hold makes the calls of the given operations (of every operation when
// none is given) wait, from now until release is called, before they are
// carried out; a waiting call whose context ends fails with the context's
// error. Calls are counted when they start, before they wait, and
// PutRecords and PutRecord count as in flight while they wait. release
// may be called more than once.
func (s *Stream) Hold(ops ...Op) (release func()) {
	h := &hold{ops: slices.Clone(ops), done: make(chan struct{})}
	s.mu.Lock()
	s.holds = append(s.holds, h)
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.holds = slices.DeleteFunc(s.holds, func(x *hold) bool { return x == h })
			s.mu.Unlock()
			close(h.done)
		})
	}
}

// start begins a call: it fails when ctx is done (the SDK sends nothing
// then), else counts the call and records what the inspection methods
// report.
func (s *Stream) start(ctx context.Context, op Op, shardID string, in any) (Call, error) {
	if err := ctx.Err(); err != nil {
		return Call{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Call{Op: op, N: s.calls[op], ShardID: shardID, Input: in}
	s.calls[op]++
	switch v := in.(type) {
	case *kinesis.ListShardsInput:
		s.listInputs = append(s.listInputs, *v)
	case *kinesis.GetShardIteratorInput:
		s.iterCalls[v.ShardIteratorType]++
	case *kinesis.GetRecordsInput:
		s.getRecordsAt[shardID] = append(s.getRecordsAt[shardID], s.now())
	}
	return c, nil
}

// gate waits for the Holds on c's operation, then consults Config.Fault.
func (s *Stream) gate(ctx context.Context, c Call) error {
	s.mu.Lock()
	var wait []chan struct{}
	for _, h := range s.holds {
		if h.ops == nil || slices.Contains(h.ops, c.Op) {
			wait = append(wait, h.done)
		}
	}
	s.mu.Unlock()
	for _, w := range wait {
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.fault != nil {
		return s.fault(ctx, c)
	}
	return nil
}

// opError wraps the error of a call as the SDK does.
func opError(op Op, err error) error {
	return &smithy.OperationError{ServiceID: "Kinesis", OperationName: string(op), Err: err}
}

// Calls returns the number of calls of op made so far, failed ones
// included (calls the SDK would refuse before sending, for a missing
// required member or a context already done, are not counted).
func (s *Stream) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// ListShardsInputs returns the inputs of every ListShards call so far, in
// order.
func (s *Stream) ListShardsInputs() []kinesis.ListShardsInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.listInputs)
}

// IteratorCalls returns the number of GetShardIterator calls so far with
// iterator type t.
func (s *Stream) IteratorCalls(t types.ShardIteratorType) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.iterCalls[t]
}

// GetRecordsTimes returns the time (on Config.Now) of every GetRecords
// call so far on a shard, in order; failed calls included.
func (s *Stream) GetRecordsTimes(shardID string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.getRecordsAt[shardID])
}

// InFlight returns the number of PutRecords and PutRecord calls carrying
// records for a shard that are under way now.
func (s *Stream) InFlight(shardID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflightShard[shardID]
}

// MaxInFlight returns the largest InFlight seen so far for any shard.
func (s *Stream) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight
}

// MaxEntriesPerShard returns the most entries for one shard seen so far
// in one PutRecords request.
func (s *Stream) MaxEntriesPerShard() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxEntries
}
