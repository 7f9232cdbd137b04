// Package checkpoint is the vocabulary of positions in a shard, shared by
// the lease table, the consumer and the operator tools: extended sequence
// numbers (a record's sequence number plus the sub-sequence number of a
// user record inside a KPL aggregated record) and the named positions
// TrimHorizon, Latest, AtTimestamp and ShardEnd.
//
// A Position is what a lease's checkpoint holds before the first record is
// processed (where reading starts) and after the last (ShardEnd); it is
// also the type of a consumer's initial position. A SequenceNumber is any
// checkpoint: a record's position or a Position. Sequence numbers compare
// as integers (real ones are 56 digits, longer than 128 bits), then by
// sub-sequence number.
//
// The fenced writer of checkpoints is kcl.Checkpointer; this package holds
// no I/O.
package checkpoint

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// Errors callers act on; match them with errors.Is.
var (
	// ErrInvalid: a sequence number is neither a decimal integer nor a
	// Position, or a Position has a sub-sequence number.
	ErrInvalid = errors.New("checkpoint: invalid sequence number")
	// ErrBackwards: the checkpoint is below the one already recorded.
	ErrBackwards = errors.New("checkpoint: goes backwards")
	// ErrBeyondDelivered: the checkpoint is past the last record delivered
	// to the processor.
	ErrBeyondDelivered = errors.New("checkpoint: past the last record delivered")
)

// Position is a named place in a shard that is not a record. It is the
// spelling of these places everywhere in this module: a consumer's initial
// position, a lease's checkpoint before its first record and after its
// last.
type Position string

// The positions.
const (
	// TrimHorizon is before the oldest record still in the shard.
	TrimHorizon Position = "TRIM_HORIZON"
	// Latest is after the newest record at the time reading starts.
	Latest Position = "LATEST"
	// AtTimestamp is at the first record written at or after the
	// consumer's configured start time.
	AtTimestamp Position = "AT_TIMESTAMP"
	// ShardEnd is after the last record of a closed shard: every record of
	// it was processed.
	ShardEnd Position = "SHARD_END"
)

// IsStart reports whether p is a position reading may start at:
// TrimHorizon, Latest or AtTimestamp.
func (p Position) IsStart() bool {
	return p == TrimHorizon || p == Latest || p == AtTimestamp
}

// Valid reports whether p is one of the four positions.
func (p Position) Valid() bool { return p.IsStart() || p == ShardEnd }

// SequenceNumber returns p as a checkpoint.
func (p Position) SequenceNumber() SequenceNumber { return SequenceNumber{Sequence: string(p)} }

// String returns the position's name as stored in a lease table.
func (p Position) String() string { return string(p) }

// SequenceNumber is an extended sequence number: a checkpoint.
type SequenceNumber struct {
	// Sequence is a record's sequence number (a decimal integer of up to
	// 129 digits), or a Position's name: TRIM_HORIZON, LATEST,
	// AT_TIMESTAMP, SHARD_END.
	Sequence string
	// SubSequence is the index of a user record inside an aggregated
	// record; 0 for a plain record and for positions.
	SubSequence uint64
}

// sentinelRank orders the positions around the record positions, which rank 0.
var sentinelRank = map[Position]int{AtTimestamp: -3, TrimHorizon: -2, Latest: -1, ShardEnd: 1}

// Parse checks a sequence number and a sub-sequence number and returns them
// as a SequenceNumber.
func Parse(seq string, subSeq uint64) (SequenceNumber, error) {
	if _, ok := sentinelRank[Position(seq)]; ok {
		if subSeq != 0 {
			return SequenceNumber{}, fmt.Errorf("%w: position %s with sub-sequence number %d", ErrInvalid, seq, subSeq)
		}
		return SequenceNumber{Sequence: seq}, nil
	}
	if !isDecimal(seq) {
		return SequenceNumber{}, fmt.Errorf("%w: %q is neither a decimal integer of 1 to %d digits without leading zeros nor a position", ErrInvalid, seq, maxDigits)
	}
	return SequenceNumber{Sequence: seq, SubSequence: subSeq}, nil
}

// maxDigits is the length limit of Kinesis sequence numbers (the API's
// pattern is 0|([1-9]\d{0,128})).
const maxDigits = 129

func isDecimal(s string) bool {
	if len(s) == 0 || len(s) > maxDigits || len(s) > 1 && s[0] == '0' {
		return false // leading zeros would give one record two spellings
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Position returns the Position s names, and whether it names one (false
// for a record's sequence number).
func (s SequenceNumber) Position() (Position, bool) {
	_, ok := sentinelRank[Position(s.Sequence)]
	return Position(s.Sequence), ok
}

// IsPosition reports whether s is one of the Positions rather than a
// record's sequence number.
func (s SequenceNumber) IsPosition() bool {
	_, ok := s.Position()
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
	if r, ok := sentinelRank[Position(s.Sequence)]; ok {
		return r
	}
	if !isDecimal(s.Sequence) {
		return -4
	}
	return 0
}

// String returns "seq/sub", or the position's name.
func (s SequenceNumber) String() string {
	if s.IsPosition() {
		return s.Sequence
	}
	return s.Sequence + "/" + strconv.FormatUint(s.SubSequence, 10)
}
