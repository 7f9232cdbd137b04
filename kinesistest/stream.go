package kinesistest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/internal/streamref"
)

// Config configures a Stream. The zero value is a one-shard stream named
// "test" on the real clock.
type Config struct {
	// StreamName is the stream's name: 1 to 128 letters, digits, '_', '-'
	// and '.'. Default "test", or the name in StreamARN.
	StreamName string
	// StreamARN is the stream's ARN. Default
	// arn:aws:kinesis:us-east-1:123456789012:stream/ followed by the name.
	// When both are set, the ARN must name StreamName.
	StreamARN string
	// Shards is the number of shards the stream is created with, each an
	// equal part of the hash key range (shardId-000000000000 and up).
	// Default 1.
	Shards int
	// Retention is the stream's retention period: records older than it
	// are no longer read, closed shards that closed longer ago are no
	// longer listed. Default 24h (AWS allows 24h to 8760h; any positive
	// value is accepted here).
	Retention time.Duration
	// MaxRecordSize is the largest record, data plus partition key, in
	// bytes. Default 1 MiB; at most 10 MiB, as AWS allows. A PutRecords
	// request may hold 5 MiB in all, or MaxRecordSize when that is larger.
	MaxRecordSize int
	// ListShardsPageSize is the most shards one ListShards returns (fewer
	// when the caller's MaxResults is smaller), 1 to 1,000. Default 1,000,
	// the most AWS returns.
	ListShardsPageSize int
	// Now is the clock: record arrival times, shard creation and closing
	// times, iterator and NextToken expiry, GetRecords call times. It is
	// called with the stream's lock held and must not call the Stream.
	// Default time.Now.
	Now func() time.Time
	// Discard makes the stream keep no records (for benchmarks of
	// writers): writes succeed with sequence numbers as usual, reads find
	// nothing. Default false.
	Discard bool
	// Fault, if set, is called before every API call is carried out, after
	// the call is counted and after any Hold on it is released. A non-nil
	// error fails the call with that error (wrapped in a
	// *smithy.OperationError, as the SDK wraps errors; errors.Is and
	// errors.As see through it). It may block (honouring ctx or not) and
	// may call the Stream's methods. It is called concurrently when calls
	// are. Default none.
	Fault func(ctx context.Context, c Call) error
	// EntryFault, if set, is called for every entry of a PutRecords (and
	// for the record of a PutRecord) that passed validation; a non-empty
	// result fails the entry with that ErrorCode (for PutRecord, the call
	// with that error code), as Kinesis fails entries with
	// ProvisionedThroughputExceededException or InternalFailure. It may
	// call the Stream's methods. Default none.
	EntryFault func(e PutEntry) (errorCode string)
}

// Defaults.
const (
	DefaultStreamName         = "test"
	DefaultRetention          = 24 * time.Hour
	DefaultMaxRecordSize      = 1 << 20
	DefaultListShardsPageSize = 1000
)

// Limits of the Kinesis API.
const (
	maxStreamRecordSize = 10 << 20
	maxPutRecords       = 500
	maxRequestSize      = 5 << 20
	maxGetRecordsBytes  = 10 << 20
	maxGetRecordsLimit  = 10000
	maxListShards       = 1000
	maxListShardsInput  = 10000
	maxPartitionKey     = 256
	iteratorLifetime    = 5 * time.Minute
	nextTokenLifetime   = 5 * time.Minute
)

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// Stream is an in-memory Kinesis data stream. Its API methods have the
// signatures of *kinesis.Client's; the options arguments are ignored. It is
// safe for concurrent use.
type Stream struct {
	name, arn     string
	retention     time.Duration
	maxRecordSize int
	pageSize      int
	now           func() time.Time
	discard       bool
	fault         func(context.Context, Call) error
	entryFault    func(PutEntry) string

	mu      sync.Mutex
	created time.Time
	shards  []*shard // by shard number
	byID    map[string]*shard
	// events holds the time of each change of the set of open shards:
	// the stream's creation (event 0), then every split and merge.
	events []time.Time
	seq    uint64 // the last sequence counter given out
	calls  map[Op]int
	holds  []*hold

	listInputs    []kinesis.ListShardsInput
	iterCalls     map[types.ShardIteratorType]int
	getRecordsAt  map[string][]time.Time
	maxInflight   int
	maxEntries    int
	inflightShard map[string]int
}

// shard is one shard of the stream.
type shard struct {
	id      string
	num     int
	parents []string
	rng     hashkey.Range
	// children are set when the shard is closed by a split or a merge.
	children []string
	// born and died are the events that opened and closed the shard
	// (died is -1 while it is open); created and closed their times.
	born, died      int
	created, closed time.Time
	// startSeq and endSeq are the sequence counters at creation and at
	// closing: every record's counter lies between.
	startSeq, endSeq uint64
	expired          bool
	records          []record
	// synthetic records come before the stored ones: synthN of them, with
	// counters synthBase+1.., data synthData, arrival synthAt.
	synthN    int
	synthBase uint64
	synthData []byte
	synthAt   time.Time
}

func (sh *shard) open() bool { return sh.died < 0 }

// len is the number of records in the shard, synthetic ones included.
func (sh *shard) len() int { return sh.synthN + len(sh.records) }

// record is one stored record.
type record struct {
	seq    uint64
	seqStr string
	pk     string
	ehk    string
	data   []byte
	at     time.Time
}

// New returns a stream configured by cfg, or an error naming the first
// setting of cfg that is invalid.
func New(cfg Config) (*Stream, error) {
	s := &Stream{
		name: cfg.StreamName, arn: cfg.StreamARN,
		retention: cfg.Retention, maxRecordSize: cfg.MaxRecordSize, pageSize: cfg.ListShardsPageSize,
		now: cfg.Now, discard: cfg.Discard, fault: cfg.Fault, entryFault: cfg.EntryFault,
		byID: map[string]*shard{}, calls: map[Op]int{}, iterCalls: map[types.ShardIteratorType]int{},
		getRecordsAt: map[string][]time.Time{}, inflightShard: map[string]int{},
	}
	if s.arn != "" {
		ref, err := streamref.Parse(s.arn)
		if err != nil || ref.ARN() == nil {
			return nil, fmt.Errorf("kinesistest: StreamARN %q is not a Kinesis stream ARN", s.arn)
		}
		switch {
		case s.name == "":
			s.name = ref.ShortName()
		case s.name != ref.ShortName():
			return nil, fmt.Errorf("kinesistest: StreamARN %q does not name stream %q", s.arn, s.name)
		}
	}
	if s.name == "" {
		s.name = DefaultStreamName
	}
	if !namePattern.MatchString(s.name) {
		return nil, fmt.Errorf("kinesistest: StreamName %q is not 1 to 128 of [a-zA-Z0-9_.-]", s.name)
	}
	if s.arn == "" {
		s.arn = "arn:aws:kinesis:" + region + ":" + account + ":stream/" + s.name
	}
	n := cfg.Shards
	switch {
	case n < 0:
		return nil, fmt.Errorf("kinesistest: Shards %d is negative", n)
	case n == 0:
		n = 1
	}
	switch {
	case s.retention < 0:
		return nil, fmt.Errorf("kinesistest: Retention %v is negative", s.retention)
	case s.retention == 0:
		s.retention = DefaultRetention
	}
	switch {
	case s.maxRecordSize < 0 || s.maxRecordSize > maxStreamRecordSize:
		return nil, fmt.Errorf("kinesistest: MaxRecordSize %d is not within 0..%d", s.maxRecordSize, maxStreamRecordSize)
	case s.maxRecordSize == 0:
		s.maxRecordSize = DefaultMaxRecordSize
	}
	switch {
	case s.pageSize < 0 || s.pageSize > maxListShards:
		return nil, fmt.Errorf("kinesistest: ListShardsPageSize %d is not within 0..%d", s.pageSize, maxListShards)
	case s.pageSize == 0:
		s.pageSize = DefaultListShardsPageSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.created = s.now()
	s.events = []time.Time{s.created}
	// Equal parts of [0, 2^128): part i is [i·2^128/n, (i+1)·2^128/n - 1].
	total := new(big.Int).Lsh(big.NewInt(1), 128)
	bound := func(i int) hashkey.Key {
		b := new(big.Int).Mul(total, big.NewInt(int64(i)))
		b.Div(b, big.NewInt(int64(n)))
		return keyOf(b)
	}
	for i := range n {
		end := hashkey.Max
		if i < n-1 {
			end = prev(bound(i + 1))
		}
		s.addShard(nil, hashkey.Range{Start: bound(i), End: end}, 0, s.created)
	}
	return s, nil
}

// keyOf converts b, within [0, 2^128), to a Key.
func keyOf(b *big.Int) hashkey.Key {
	mask := new(big.Int).SetUint64(^uint64(0))
	lo := new(big.Int).And(b, mask).Uint64()
	hi := new(big.Int).Rsh(b, 64).Uint64()
	return hashkey.Key{Hi: hi, Lo: lo}
}

// next returns k+1; k must be below hashkey.Max.
func next(k hashkey.Key) hashkey.Key {
	if k.Lo == ^uint64(0) {
		return hashkey.Key{Hi: k.Hi + 1}
	}
	return hashkey.Key{Hi: k.Hi, Lo: k.Lo + 1}
}

// prev returns k-1; k must be above 0.
func prev(k hashkey.Key) hashkey.Key {
	if k.Lo == 0 {
		return hashkey.Key{Hi: k.Hi - 1, Lo: ^uint64(0)}
	}
	return hashkey.Key{Hi: k.Hi, Lo: k.Lo - 1}
}

func (s *Stream) addShard(parents []string, rng hashkey.Range, event int, at time.Time) *shard {
	num := len(s.shards)
	sh := &shard{
		id: fmt.Sprintf("shardId-%012d", num), num: num, parents: parents, rng: rng,
		born: event, died: -1, created: at, startSeq: s.seq,
	}
	s.shards = append(s.shards, sh)
	s.byID[sh.id] = sh
	return sh
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// ARN returns the stream's ARN.
func (s *Stream) ARN() string { return s.arn }

// checkStream checks that a call names this stream.
func (s *Stream) checkStream(name, arn *string) error {
	if name == nil && arn == nil {
		return validation("either StreamName or StreamARN is required")
	}
	if name != nil && *name != s.name {
		return notFound("Stream %s under account %s not found.", *name, account)
	}
	if arn != nil && *arn != s.arn {
		return notFound("Stream %s not found.", *arn)
	}
	return nil
}

// Sequence numbers are 56 digits: "49", the stream-wide counter in 38
// digits, and the shard's number in 16. They grow with the counter across
// shards, compare as strings as they do as integers, and tell their shard.
const seqLen = 56

func seqString(counter uint64, shardNum int) string {
	var b [seqLen]byte
	return string(appendSeq(b[:0], counter, shardNum))
}

// appendSeq appends the sequence number of a counter and shard number.
func appendSeq(b []byte, counter uint64, shardNum int) []byte {
	b = append(b, "49"...)
	b = appendPadded(b, counter, 38)
	return appendPadded(b, uint64(shardNum), 16)
}

// zeros pads the parts of sequence numbers.
const zeros = "00000000000000000000000000000000000000"

func appendPadded(b []byte, v uint64, width int) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], v, 10)
	b = append(b, zeros[:width-len(d)]...)
	return append(b, d...)
}

var errBadSeq = errors.New("not a sequence number of this stream")

// parseSeq returns the counter and shard number of a sequence number.
func parseSeq(s string) (counter uint64, shardNum int, err error) {
	if len(s) != seqLen || s[:2] != "49" {
		return 0, 0, errBadSeq
	}
	c, err1 := strconv.ParseUint(s[2:40], 10, 64)
	n, err2 := strconv.ParseUint(s[40:], 10, 31)
	if err1 != nil || err2 != nil {
		return 0, 0, errBadSeq
	}
	return c, int(n), nil
}

// agedOut reports whether sh is past the retention period (or was aged
// out by Expire): it is no longer listed nor readable.
func (s *Stream) agedOut(sh *shard, now time.Time) bool {
	return sh.expired || (!sh.open() && sh.closed.Before(now.Add(-s.retention)))
}

// trimmed reports whether a record that arrived at t is past retention.
func (s *Stream) trimmed(t, now time.Time) bool { return t.Before(now.Add(-s.retention)) }

// route returns the open shard whose hash key range holds k.
func (s *Stream) route(k hashkey.Key) (*shard, error) {
	for _, sh := range s.shards {
		if sh.open() && sh.rng.Contains(k) {
			return sh, nil
		}
	}
	return nil, fmt.Errorf("kinesistest: no open shard for hash key %v", k)
}

// hashKey returns the hash key of a record.
func hashKey(partitionKey string, explicitHashKey *string) (hashkey.Key, error) {
	if explicitHashKey != nil {
		k, err := hashkey.Parse(*explicitHashKey)
		if err != nil {
			return hashkey.Key{}, invalidArgument("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", *explicitHashKey)
		}
		return k, nil
	}
	return hashkey.FromPartitionKey(partitionKey), nil
}

// ShardFor returns the open shard a record with these keys is written to
// now: by explicitHashKey when it is not empty, else by the MD5 of
// partitionKey.
func (s *Stream) ShardFor(partitionKey, explicitHashKey string) (string, error) {
	var ehk *string
	if explicitHashKey != "" {
		ehk = &explicitHashKey
	}
	k, err := hashKey(partitionKey, ehk)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, err := s.route(k)
	if err != nil {
		return "", err
	}
	return sh.id, nil
}

// appendLocked stores a record in sh and returns its sequence number.
func (s *Stream) appendLocked(sh *shard, pk string, ehk *string, data []byte, at time.Time) string {
	s.seq++
	seq := seqString(s.seq, sh.num)
	if !s.discard {
		sh.records = append(sh.records, record{
			seq: s.seq, seqStr: seq, pk: pk, ehk: aws.ToString(ehk), data: append([]byte(nil), data...), at: at,
		})
	}
	return seq
}

// Put writes a record routed by the MD5 of its partition key, as
// PutRecord would but without a call (no counting, no hooks), and returns
// its shard and sequence number.
func (s *Stream) Put(partitionKey string, data []byte) (shardID, sequenceNumber string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, err := s.route(hashkey.FromPartitionKey(partitionKey))
	if err != nil {
		return "", "", err
	}
	return sh.id, s.appendLocked(sh, partitionKey, nil, data, s.now()), nil
}

// PutTo writes a record to the given open shard, whatever its partition
// key, and returns its sequence number. It makes no call (no counting, no
// hooks).
func (s *Stream) PutTo(shardID, partitionKey string, data []byte) (sequenceNumber string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[shardID]
	switch {
	case sh == nil:
		return "", fmt.Errorf("kinesistest: no shard %q", shardID)
	case !sh.open():
		return "", fmt.Errorf("kinesistest: shard %s is closed", shardID)
	}
	return s.appendLocked(sh, partitionKey, nil, data, s.now()), nil
}

// Split splits an open shard at the middle of its hash key range, as
// SplitShard would but without a call, and returns the two children:
// left holds the lower half.
func (s *Stream) Split(shardID string) (left, right string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[shardID]
	if sh == nil {
		return "", "", fmt.Errorf("kinesistest: no shard %q", shardID)
	}
	if sh.rng.Start == sh.rng.End {
		return "", "", fmt.Errorf("kinesistest: shard %s holds a single hash key", shardID)
	}
	a, b, err := s.splitLocked(sh.id, next(hashkey.Mid(sh.rng.Start, sh.rng.End)))
	if err != nil {
		return "", "", err
	}
	return a.id, b.id, nil
}

// Merge merges two adjacent open shards, as MergeShards would but without
// a call, and returns the child.
func (s *Stream) Merge(shardID, adjacentShardID string) (child string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.mergeLocked(shardID, adjacentShardID)
	if err != nil {
		return "", err
	}
	return c.id, nil
}

// openShard returns the shard id names if it is open, else the error
// Kinesis gives for resharding it.
func (s *Stream) openShard(id string, now time.Time) (*shard, error) {
	sh := s.byID[id]
	if sh == nil || s.agedOut(sh, now) {
		return nil, notFound("Could not find shard %s in stream %s under account %s.", id, s.name, account)
	}
	if !sh.open() {
		return nil, invalidArgument("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", id, s.name, account)
	}
	return sh, nil
}

func (s *Stream) closeLocked(sh *shard, event int, at time.Time, children ...string) {
	sh.died, sh.closed, sh.endSeq, sh.children = event, at, s.seq, children
}

// splitLocked splits shard id into [start, k-1] and [k, end].
func (s *Stream) splitLocked(id string, k hashkey.Key) (left, right *shard, err error) {
	now := s.now()
	p, err := s.openShard(id, now)
	if err != nil {
		return nil, nil, err
	}
	if k.Cmp(p.rng.Start) <= 0 || k.Cmp(p.rng.End) > 0 {
		return nil, nil, invalidArgument("NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than the shard's StartingHashKey %s and at most the shard's EndingHashKey %s.",
			k, id, s.name, account, p.rng.Start, p.rng.End)
	}
	e := len(s.events)
	s.events = append(s.events, now)
	left = s.addShard([]string{id}, hashkey.Range{Start: p.rng.Start, End: prev(k)}, e, now)
	right = s.addShard([]string{id}, hashkey.Range{Start: k, End: p.rng.End}, e, now)
	s.closeLocked(p, e, now, left.id, right.id)
	return left, right, nil
}

// mergeLocked merges two adjacent open shards.
func (s *Stream) mergeLocked(id, adjacentID string) (*shard, error) {
	now := s.now()
	a, err := s.openShard(id, now)
	if err != nil {
		return nil, err
	}
	b, err := s.openShard(adjacentID, now)
	if err != nil {
		return nil, err
	}
	adjacent := func(x, y *shard) bool { return x.rng.End != hashkey.Max && next(x.rng.End) == y.rng.Start }
	var rng hashkey.Range
	switch {
	case a == b:
		return nil, invalidArgument("Shard %s cannot be merged with itself.", id)
	case adjacent(a, b):
		rng = hashkey.Range{Start: a.rng.Start, End: b.rng.End}
	case adjacent(b, a):
		rng = hashkey.Range{Start: b.rng.Start, End: a.rng.End}
	default:
		return nil, invalidArgument("Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", id, adjacentID, s.name, account)
	}
	e := len(s.events)
	s.events = append(s.events, now)
	c := s.addShard([]string{id, adjacentID}, rng, e, now)
	s.closeLocked(a, e, now, c.id)
	s.closeLocked(b, e, now, c.id)
	return c, nil
}

// Expire ages a closed shard out of the retention period at once, as if
// Retention had passed since it closed: it is no longer listed, and
// GetShardIterator for it answers ResourceNotFoundException. The trim
// horizon moves past it.
func (s *Stream) Expire(shardID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[shardID]
	switch {
	case sh == nil:
		return fmt.Errorf("kinesistest: no shard %q", shardID)
	case sh.open():
		return fmt.Errorf("kinesistest: shard %s is open; only closed shards age out", shardID)
	}
	sh.expired = true
	sh.records = nil
	return nil
}

// syntheticKey is the partition key of synthetic records.
const syntheticKey = "synthetic"

// Synthetic makes an open shard that holds no records yet hold n records
// of data, made up on each read instead of stored: a read of a million
// records holds no memory, and a GetRecords call allocates a few objects
// whatever the number of records it returns. They come before any record
// written later, have partition key "synthetic" and arrive at the time of
// the call. Every synthetic record read shares the data slice, and those
// of one GetRecords call share their PartitionKey and
// ApproximateArrivalTimestamp too: none of them may be modified. Records
// and UserRecords do not report them.
func (s *Stream) Synthetic(shardID string, n int, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[shardID]
	switch {
	case sh == nil:
		return fmt.Errorf("kinesistest: no shard %q", shardID)
	case !sh.open():
		return fmt.Errorf("kinesistest: shard %s is closed", shardID)
	case sh.len() > 0:
		return fmt.Errorf("kinesistest: shard %s already holds records", shardID)
	case n < 0:
		return fmt.Errorf("kinesistest: %d synthetic records", n)
	}
	sh.synthN, sh.synthBase, sh.synthData, sh.synthAt = n, s.seq, data, s.now()
	s.seq += uint64(n)
	return nil
}
