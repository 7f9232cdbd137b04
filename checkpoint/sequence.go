// Package checkpoint records how far a shard was processed, in the lease
// table, fenced by the lease: a Checkpointer writes only while its worker
// holds the lease, and only forward.
//
// Positions are extended sequence numbers: a record's sequence number plus
// the sub-sequence number of a user record inside an aggregated record, or
// one of the sentinels TrimHorizon, Latest, AtTimestamp and ShardEnd.
package checkpoint

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/kinesisgo/kinesis/lease"
)

// Errors callers act on; match them with errors.Is.
var (
	// ErrInvalid: a sequence number is neither a decimal integer nor a
	// sentinel, or a sub-sequence number is negative.
	ErrInvalid = errors.New("checkpoint: invalid sequence number")
	// ErrBackwards: the checkpoint is below the one already recorded.
	ErrBackwards = errors.New("checkpoint: goes backwards")
	// ErrBeyondDelivered: the checkpoint is past the last record delivered
	// to the processor.
	ErrBeyondDelivered = errors.New("checkpoint: past the last record delivered")
	// ErrLeaseLost is lease.ErrLeaseLost: the worker no longer holds the
	// lease, so the checkpoint was not written.
	ErrLeaseLost = lease.ErrLeaseLost
)

// SequenceNumber is an extended sequence number: a position in a shard.
type SequenceNumber struct {
	// Sequence is a record's sequence number (a decimal integer of up to
	// 129 digits), or a sentinel: TRIM_HORIZON, LATEST, AT_TIMESTAMP,
	// SHARD_END.
	Sequence string
	// SubSequence is the index of a user record inside an aggregated
	// record; 0 for a plain record and for sentinels.
	SubSequence int64
}

// The sentinels.
var (
	// TrimHorizon is before the oldest record of a shard.
	TrimHorizon = SequenceNumber{Sequence: lease.TrimHorizon}
	// Latest is after the newest record at the time processing started.
	Latest = SequenceNumber{Sequence: lease.Latest}
	// AtTimestamp is at the consumer's configured start timestamp.
	AtTimestamp = SequenceNumber{Sequence: lease.AtTimestamp}
	// ShardEnd is after the last record of a closed shard.
	ShardEnd = SequenceNumber{Sequence: lease.ShardEnd}
)

// sentinelRank orders the sentinels around the record positions, which rank 0.
var sentinelRank = map[string]int{lease.AtTimestamp: -3, lease.TrimHorizon: -2, lease.Latest: -1, lease.ShardEnd: 1}

// Parse checks a sequence number and a sub-sequence number and returns them
// as a SequenceNumber.
func Parse(seq string, subSeq int64) (SequenceNumber, error) {
	if _, ok := sentinelRank[seq]; ok {
		if subSeq != 0 {
			return SequenceNumber{}, fmt.Errorf("%w: sentinel %s with sub-sequence number %d", ErrInvalid, seq, subSeq)
		}
		return SequenceNumber{Sequence: seq}, nil
	}
	if !isDecimal(seq) {
		return SequenceNumber{}, fmt.Errorf("%w: %q is neither a decimal integer of 1 to %d digits nor a sentinel", ErrInvalid, seq, maxDigits)
	}
	if subSeq < 0 {
		return SequenceNumber{}, fmt.Errorf("%w: negative sub-sequence number %d", ErrInvalid, subSeq)
	}
	return SequenceNumber{Sequence: seq, SubSequence: subSeq}, nil
}

// maxDigits is the length limit of Kinesis sequence numbers (the API's
// pattern is 0|([1-9]\d{0,128})).
const maxDigits = 129

func isDecimal(s string) bool {
	if len(s) == 0 || len(s) > maxDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsSentinel reports whether s is one of the sentinels.
func (s SequenceNumber) IsSentinel() bool {
	_, ok := sentinelRank[s.Sequence]
	return ok
}

// Compare returns -1, 0 or +1 as s is before, at or after o. Sequence
// numbers compare as integers, then sub-sequence numbers;
// AT_TIMESTAMP < TRIM_HORIZON < LATEST < every record < SHARD_END. Invalid
// sequence numbers compare as 0 with each other and before everything else.
func (s SequenceNumber) Compare(o SequenceNumber) int {
	rs, ro := s.rank(), o.rank()
	if rs != ro {
		if rs < ro {
			return -1
		}
		return 1
	}
	if rs != 0 {
		return 0
	}
	a, _ := new(big.Int).SetString(s.Sequence, 10)
	b, _ := new(big.Int).SetString(o.Sequence, 10)
	if c := a.Cmp(b); c != 0 {
		return c
	}
	switch {
	case s.SubSequence < o.SubSequence:
		return -1
	case s.SubSequence > o.SubSequence:
		return 1
	}
	return 0
}

func (s SequenceNumber) rank() int {
	if r, ok := sentinelRank[s.Sequence]; ok {
		return r
	}
	if !isDecimal(s.Sequence) {
		return -4
	}
	return 0
}

// String returns "seq/sub", or the sentinel's name.
func (s SequenceNumber) String() string {
	if s.IsSentinel() {
		return s.Sequence
	}
	return s.Sequence + "/" + strconv.FormatInt(s.SubSequence, 10)
}

// OfLease returns a lease's checkpoint. An empty checkpoint (a lease
// created without one) reads as TrimHorizon.
func OfLease(l lease.Lease) SequenceNumber {
	if l.Checkpoint == "" {
		return TrimHorizon
	}
	return SequenceNumber{Sequence: l.Checkpoint, SubSequence: l.CheckpointSubSequence}
}

// PendingOfLease returns a lease's pending checkpoint, if any.
func PendingOfLease(l lease.Lease) (SequenceNumber, bool) {
	if l.PendingCheckpoint == "" {
		return SequenceNumber{}, false
	}
	return SequenceNumber{Sequence: l.PendingCheckpoint, SubSequence: l.PendingCheckpointSubSequence}, true
}
