package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/spf13/cobra"
)

// Pacing of GetRecords per shard: at most 5 calls/s is the shard's limit, and
// tail leaves room for the stream's real consumers.
const (
	tailMinInterval  = 250 * time.Millisecond // between two reads of a shard
	tailIdleInterval = time.Second            // after an empty read, with --follow
	tailMaxBackoff   = 5 * time.Second        // after throttling
)

// throttledBackoff is the wait before reading a shard again after the n-th
// consecutive throttled read: tailMinInterval plus a random wait up to a
// ceiling that starts at twice tailMinInterval and doubles, capped at
// tailMaxBackoff.
var throttledBackoff = backoff.Policy{Base: 2 * tailMinInterval, Max: tailMaxBackoff, Min: tailMinInterval}

// tailRecord is the JSON form of one user record (tail --json).
type tailRecord struct {
	Shard             string     `json:"shard"`
	SequenceNumber    string     `json:"sequenceNumber"`
	SubSequenceNumber uint64     `json:"subSequenceNumber"`
	Aggregated        bool       `json:"aggregated"`
	PartitionKey      string     `json:"partitionKey"`
	ExplicitHashKey   string     `json:"explicitHashKey,omitempty"`
	Arrival           *time.Time `json:"arrival,omitempty"`
	Data              *string    `json:"data,omitempty"`       // when the payload is valid UTF-8
	DataBase64        string     `json:"dataBase64,omitempty"` // otherwise
}

// startPosition is where tail starts reading the shards it begins with.
type startPosition struct {
	kind kintypes.ShardIteratorType
	at   time.Time // for AT_TIMESTAMP
}

func parseFrom(s string) (startPosition, error) {
	switch upperASCII(s) {
	case "TRIM_HORIZON":
		return startPosition{kind: kintypes.ShardIteratorTypeTrimHorizon}, nil
	case "LATEST":
		return startPosition{kind: kintypes.ShardIteratorTypeLatest}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return startPosition{}, usageErr("bad --from %q: want TRIM_HORIZON, LATEST or an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
	}
	return startPosition{kind: kintypes.ShardIteratorTypeAtTimestamp, at: t}, nil
}

// upperASCII upper-cases the ASCII letters of s only: strings.ToUpper would
// also turn "ı" into "I" and "ſ" into "S", so that "trım_horizon" would
// pass for a keyword.
func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func (a *app) tailCommand() *cobra.Command {
	var (
		from     string
		follow   bool
		max      int
		consumer string
	)
	cmd := &cobra.Command{
		Use:   "tail STREAM",
		Short: "Print the stream's records, one user record per line (KPL aggregates taken apart)",
		Long: `Print the stream's records, one user record per line (a newline is added
unless the data ends with one). KPL aggregated records
are taken apart into their user records. A shard's children are read once the
shard is read to its end, so records of a key come out in the order they were
written across splits and merges.

Without --follow, tail stops once every shard, children included, is read to
its tip. With --follow it waits for new records until interrupted (exit 0).

With --json each line is a JSON object: shard, sequenceNumber,
subSequenceNumber, aggregated, partitionKey, explicitHashKey, arrival, and
data (the payload, when it is valid UTF-8) or dataBase64 (otherwise).

With --consumer NAME tail reads through that registered consumer (see
kinesisctl consumers) with enhanced fan-out, SubscribeToShard, instead of
GetRecords: records are pushed as they arrive, at up to 2 MiB/s per shard of
the consumer's own, without taking from the read limit the stream's polling
consumers share.`,
		Args: args("STREAM"),
	}
	cmd.Flags().StringVar(&from, "from", "TRIM_HORIZON", "where to start: TRIM_HORIZON (oldest), LATEST (new records only) or an RFC 3339 time")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep reading new records until interrupted")
	cmd.Flags().IntVarP(&max, "max", "n", 0, "stop after this many user records (0: no limit)")
	cmd.Flags().StringVar(&consumer, "consumer", "", "read with enhanced fan-out through this registered consumer (default: poll with GetRecords)")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		pos, err := parseFrom(from)
		if err != nil {
			return err
		}
		if max < 0 {
			return usageErr("--max must not be negative, got %d", max)
		}
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		t := &tailer{client: client, stream: argv[0], pos: pos, follow: follow, max: max,
			out: bufio.NewWriter(a.stdout), json: a.json}
		if consumer != "" {
			if t.consumerARN, err = consumerARN(ctx, client, argv[0], consumer); err != nil {
				return err
			}
		}
		err = t.run(ctx)
		if follow && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil // interrupted: how --follow ends
		}
		return err
	})
	return cmd
}

// tailer reads every shard of a stream, parents before children, and prints
// the user records.
type tailer struct {
	client *kinesis.Client
	stream string
	pos    startPosition
	follow bool
	max    int
	json   bool
	// consumerARN, when set, makes readShard subscribe with it
	// (subscribeShard) instead of polling.
	consumerARN string

	mu      sync.Mutex // guards out and written
	out     *bufio.Writer
	written int
}

// shardOutcome is what a shard reader reports when it stops.
type shardOutcome struct {
	id       string
	ended    bool                  // the shard is closed and was read to its end
	children []kintypes.ChildShard // its children, when ended
	err      error
}

// errMaxReached stops the readers once --max records are printed.
var errMaxReached = errors.New("--max records printed")

func (t *tailer) run(parent context.Context) error {
	shards, err := listShards(parent, t.client, t.stream)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)

	parents := map[string][]string{} // shard -> its parents among the shards tail knows
	closed := map[string]bool{}
	known := map[string]bool{}
	for _, s := range shards {
		known[s.ShardID] = true
		closed[s.ShardID] = !s.open()
	}
	for _, s := range shards {
		for _, p := range []string{s.ParentShardID, s.AdjacentParentShardID} {
			if p != "" && known[p] {
				parents[s.ShardID] = append(parents[s.ShardID], p)
			}
		}
	}
	finished := map[string]bool{} // read to their end (or, with LATEST, closed before the start)
	started := map[string]bool{}
	results := make(chan shardOutcome)
	running := 0
	start := func(id string, pos startPosition) {
		started[id] = true
		running++
		go func() {
			o, err := t.readShard(ctx, id, pos, closed[id])
			if err != nil {
				cancel(err)
				o.err = err
			}
			results <- o
		}()
	}
	ready := func(id string) bool {
		for _, p := range parents[id] {
			if !finished[p] {
				return false
			}
		}
		return true
	}

	childPos := t.pos
	if t.pos.kind == kintypes.ShardIteratorTypeLatest {
		// A child's records all arrived after the start: read them all.
		childPos = startPosition{kind: kintypes.ShardIteratorTypeTrimHorizon}
		for _, s := range shards {
			if closed[s.ShardID] {
				finished[s.ShardID] = true
			}
		}
	}
	for _, s := range shards {
		if !finished[s.ShardID] && ready(s.ShardID) {
			start(s.ShardID, t.pos)
		}
	}
	for running > 0 {
		o := <-results
		running--
		if o.err != nil || !o.ended || ctx.Err() != nil {
			continue
		}
		finished[o.id] = true
		for _, c := range o.children {
			id := aws.ToString(c.ShardId)
			if _, ok := parents[id]; !ok {
				parents[id] = c.ParentShards
			}
			if !started[id] && ready(id) {
				start(id, childPos)
			}
		}
	}
	err = context.Cause(ctx)
	if ctx.Err() == nil || errors.Is(err, errMaxReached) {
		err = nil
	}
	if ferr := t.flush(); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// readShard reads one shard from pos until its end, or (without --follow,
// for a shard that was open when tail started) until its tip.
func (t *tailer) readShard(ctx context.Context, id string, pos startPosition, wasClosed bool) (shardOutcome, error) {
	if t.consumerARN != "" {
		return t.subscribeShard(ctx, id, pos, wasClosed)
	}
	o := shardOutcome{id: id}
	var last string // sequence number of the last record printed
	iter, err := t.iterator(ctx, id, pos, last)
	if err != nil {
		return o, err
	}
	throttled := 0
	for {
		out, err := t.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			var expired *kintypes.ExpiredIteratorException
			switch {
			case errors.As(err, &expired):
				if iter, err = t.iterator(ctx, id, pos, last); err != nil {
					return o, err
				}
				continue
			case awserr.IsThrottling(err):
				throttled++
				if err := backoff.Sleep(ctx, throttledBackoff.Delay(throttled)); err != nil {
					return o, err
				}
				continue
			}
			return o, fmt.Errorf("reading shard %s: %w", id, err)
		}
		throttled = 0
		if err := t.print(id, out.Records); err != nil {
			return o, err
		}
		if n := len(out.Records); n > 0 {
			last = aws.ToString(out.Records[n-1].SequenceNumber)
		}
		if out.NextShardIterator == nil {
			o.ended, o.children = true, out.ChildShards
			return o, nil
		}
		iter = out.NextShardIterator
		empty := len(out.Records) == 0
		if empty && !wasClosed && !t.follow && aws.ToInt64(out.MillisBehindLatest) == 0 {
			return o, nil // at the tip
		}
		wait := tailMinInterval
		if empty && t.follow {
			wait = tailIdleInterval
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return o, err
		}
	}
}

// iterator returns a shard iterator just after the sequence number last, or
// at pos when nothing was read yet.
func (t *tailer) iterator(ctx context.Context, id string, pos startPosition, last string) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(t.stream), ShardId: aws.String(id), ShardIteratorType: pos.kind}
	switch {
	case last != "":
		in.ShardIteratorType = kintypes.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(last)
	case pos.kind == kintypes.ShardIteratorTypeAtTimestamp:
		in.Timestamp = aws.Time(pos.at)
	}
	out, err := t.client.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("shard iterator for %s: %w", id, streamErr(t.stream, err))
	}
	return out.ShardIterator, nil
}

// print writes the user records of a batch, in order.
func (t *tailer) print(shard string, records []kintypes.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range records {
		users, aggregated := aggregation.Decode(r.Data)
		if !aggregated {
			users = []aggregation.UserRecord{{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data}}
		}
		for _, u := range users {
			if t.max > 0 && t.written >= t.max {
				return errMaxReached
			}
			if err := t.printOne(shard, r, u, aggregated); err != nil {
				return err
			}
			t.written++
		}
	}
	if t.max > 0 && t.written >= t.max {
		return errMaxReached
	}
	return t.out.Flush()
}

func (t *tailer) printOne(shard string, r kintypes.Record, u aggregation.UserRecord, aggregated bool) error {
	if !t.json {
		t.out.Write(u.Data)
		if n := len(u.Data); n > 0 && u.Data[n-1] == '\n' {
			return nil // already on its own line (log lines usually end with one)
		}
		return t.out.WriteByte('\n')
	}
	rec := tailRecord{
		Shard:             shard,
		SequenceNumber:    aws.ToString(r.SequenceNumber),
		SubSequenceNumber: u.SubSequenceNumber,
		Aggregated:        aggregated,
		PartitionKey:      u.PartitionKey,
		ExplicitHashKey:   u.ExplicitHashKey,
		Arrival:           r.ApproximateArrivalTimestamp,
	}
	if utf8.Valid(u.Data) {
		s := string(u.Data)
		rec.Data = &s
	} else {
		rec.DataBase64 = base64.StdEncoding.EncodeToString(u.Data)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	t.out.Write(b)
	return t.out.WriteByte('\n')
}

func (t *tailer) flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out.Flush()
}
