package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/kinesisgo/kinesis/lease"
	"github.com/spf13/cobra"
)

// resetTarget is where leases reset --to puts an application.
type resetTarget struct {
	pos checkpoint.Position // TrimHorizon, Latest, or "" for at/seq
	at  time.Time           // a time: each shard resumes at its first record at or after it
	seq string              // a sequence number: the new checkpoint of one shard
	sub uint64
}

func parseResetTarget(s string) (resetTarget, error) {
	switch upperASCII(s) {
	case string(checkpoint.TrimHorizon):
		return resetTarget{pos: checkpoint.TrimHorizon}, nil
	case string(checkpoint.Latest):
		return resetTarget{pos: checkpoint.Latest}, nil
	}
	seq, subStr, hasSub := strings.Cut(s, "/")
	if isSequenceNumber(seq) {
		var sub uint64
		if hasSub {
			n, err := strconv.ParseUint(subStr, 10, 64)
			if err != nil {
				return resetTarget{}, usageErr("bad --to %q: the sub-sequence number after / must be a decimal number", s)
			}
			sub = n
		}
		return resetTarget{seq: seq, sub: sub}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return resetTarget{}, usageErr("bad --to %q: want TRIM_HORIZON, LATEST, an RFC 3339 time such as 2026-01-02T15:04:05Z, "+
			"or a sequence number (SEQ or SEQ/SUB)", s)
	}
	return resetTarget{at: t}, nil
}

// resetStep is one line of a reset plan (the JSON form of leases reset).
type resetStep struct {
	Shard string `json:"shard"`
	Owner string `json:"owner,omitempty"`
	// Current is the checkpoint before the reset; empty for a lease the
	// reset creates.
	Current string `json:"current,omitempty"`
	// New is the checkpoint after it; empty when the lease is left alone.
	New string `json:"new,omitempty"`
	// ResumesAt is the sequence number of the first record processed
	// after the reset, when known.
	ResumesAt string `json:"resumesAt,omitempty"`
	// Action is "reset", "create" (a shard of the stream without a lease,
	// such as a finished parent deleted after its children started), or
	// "skip".
	Action string `json:"action"`
	Why    string `json:"why,omitempty"`

	shard  *shardInfo // nil for a lease whose shard is not in the stream
	newSeq string
	newSub uint64
}

func (a *app) leasesResetCommand() *cobra.Command {
	var (
		table, stream, to string
		only              []string
		dryRun            bool
	)
	cmd := &cobra.Command{
		Use:   "reset APP --to TRIM_HORIZON|LATEST|TIME|SEQUENCE",
		Short: "Move an application's checkpoints: to the oldest record, the newest, a time, or a sequence number",
		Long: `Reset the checkpoints of an application's leases, while its workers run:

  --to TRIM_HORIZON  every shard is processed again from its oldest record.
  --to LATEST        open shards resume with the records written from now on
                     (kcl reads from a few seconds before, its ClockSkewMargin,
                     so that nothing written meanwhile is skipped); closed
                     shards are finished (SHARD_END).
  --to TIME          (RFC 3339) every shard resumes at its first record that
                     arrived at or after TIME: the checkpoint becomes the
                     record just before it, a sequence number that kcl and the
                     Java KCL both resume after. A shard with no record before
                     TIME (opened after it) restarts at TRIM_HORIZON; a closed
                     shard with none at or after it (closed before it) is
                     finished (SHARD_END).
  --to SEQ[/SUB]     the checkpoint of one shard (--shard), as a worker writes
                     it: processing resumes after that record.

Shards of the stream that have no lease (a finished parent deleted once its
children started) get one when the new position reads from them, so that
children still wait for their parents. Leases are written parents first.

Every write is conditional on the lease counter read, and removes the owner:
a worker holding the lease fails its next renewal and stops processing the
shard, and the next worker to take it (at its next pass, without waiting for
expiry) resumes from the new checkpoint. No worker restarts. A lease written
by a worker between the read and the write is read again and written again.

The stream is --stream, or the one recorded in the table's tag ` + streamTagKey + `
(recorded by the first command given --stream, a dry run aside). --dry-run
prints the plan (current and new checkpoint per shard) and writes nothing.`,
		Args: args("APP"),
	}
	cmd.Flags().StringVar(&table, "table", "", "lease table name (default: APP)")
	cmd.Flags().StringVar(&stream, "stream", "", "the stream the application consumes (default: the one recorded in the table's tag)")
	cmd.Flags().StringVar(&to, "to", "", "TRIM_HORIZON, LATEST, an RFC 3339 time, or a sequence number SEQ[/SUB] (required)")
	cmd.Flags().StringSliceVar(&only, "shard", nil, "reset only this shard (repeatable; ID or number)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, write nothing")
	cmd.RunE = a.runE("DYNAMODB", func(cmd *cobra.Command, argv []string) error {
		if to == "" {
			return usageErr("--to is required: TRIM_HORIZON, LATEST, an RFC 3339 time or a sequence number")
		}
		target, err := parseResetTarget(to)
		if err != nil {
			return err
		}
		shardsOnly, err := shardArgs(only)
		if err != nil {
			return err
		}
		if target.seq != "" && len(shardsOnly) != 1 {
			return usageErr("--to a sequence number needs exactly one --shard: a sequence number belongs to one shard")
		}
		if !target.at.IsZero() && target.at.After(time.Now()) {
			return usageErr("--to %s is in the future: pass a past time, or LATEST", to)
		}
		if table == "" {
			table = argv[0]
		}
		ctx := cmd.Context()
		if _, stream, err = a.appStream(ctx, table, stream, !dryRun); err != nil {
			return err
		}
		plan, err := a.resetPlan(ctx, table, stream, target, shardsOnly)
		if err != nil {
			return err
		}
		if !dryRun {
			if err := a.applyReset(ctx, table, plan); err != nil {
				return err
			}
		}
		return a.emit(plan, func(w io.Writer) error {
			t := newTable(w, "SHARD", "OWNER", "CURRENT", "NEW", "RESUMES AT", "ACTION", "WHY")
			for _, s := range plan {
				t.row(s.Shard, s.Owner, s.Current, s.New, s.ResumesAt, s.Action, s.Why)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if dryRun {
				_, err := fmt.Fprintln(w, "dry run: nothing written")
				return err
			}
			return nil
		})
	})
	return cmd
}

// resetPlan resolves the new checkpoint of every shard the reset touches,
// in shard ID order, which puts parents before their children (a child's
// ID is always higher).
func (a *app) resetPlan(ctx context.Context, table, stream string, target resetTarget, only []string) ([]resetStep, error) {
	leases, bad, err := a.readLeases(ctx, table)
	if err != nil {
		return nil, err
	}
	for _, m := range bad {
		fmt.Fprintf(a.stderr, "kinesisctl: malformed lease item %s left alone: %s\n", m.Key, malformedProblem(m))
	}
	kc, err := a.kinesisClient(ctx)
	if err != nil {
		return nil, err
	}
	shards, err := listShards(ctx, kc, stream)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*shardInfo, len(shards))
	for i := range shards {
		byID[shards[i].ShardID] = &shards[i]
	}
	steps := map[string]*resetStep{}
	listedLeases := 0
	for _, l := range leases {
		s := &resetStep{Shard: l.Key, Owner: l.Owner, Current: formatCheckpoint(l.Checkpoint, l.CheckpointSubSequence), Action: "reset", shard: byID[l.Key]}
		if s.shard != nil {
			listedLeases++
		}
		steps[l.Key] = s
	}
	if len(leases) > 0 && listedLeases == 0 {
		return nil, fail(exitNotFound, nil, "no lease of table %s is a shard of stream %s: is --stream the application's stream?", table, stream)
	}
	for i := range shards {
		if _, ok := steps[shards[i].ShardID]; !ok {
			steps[shards[i].ShardID] = &resetStep{Shard: shards[i].ShardID, Action: "create", shard: &shards[i]}
		}
	}
	ids := make([]string, 0, len(steps))
	for id := range steps {
		ids = append(ids, id)
	}
	if len(only) > 0 {
		for _, id := range only {
			if _, ok := steps[id]; !ok {
				return nil, fail(exitNotFound, nil, "shard %s has no lease in table %s and is not a shard of stream %s", id, table, stream)
			}
		}
		ids = only
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	plan := make([]resetStep, 0, len(ids))
	for _, id := range ids {
		s := steps[id]
		if err := resolve(ctx, kc, stream, target, s); err != nil {
			return nil, err
		}
		if s.New == "" {
			s.Action = "skip"
		}
		plan = append(plan, *s)
	}
	return plan, nil
}

// resolve fills in the new checkpoint of one step.
func resolve(ctx context.Context, kc *kinesis.Client, stream string, target resetTarget, s *resetStep) error {
	set := func(seq string, sub uint64, why string) {
		s.newSeq, s.newSub, s.New, s.Why = seq, sub, formatCheckpoint(seq, sub), why
	}
	if s.shard == nil {
		s.Why = "not a shard of the stream (aged out): left alone"
		return nil
	}
	switch {
	case target.pos == checkpoint.TrimHorizon:
		set(string(checkpoint.TrimHorizon), 0, "")
	case target.pos == checkpoint.Latest && !s.shard.open():
		set(string(checkpoint.ShardEnd), 0, "closed: no new records")
	case target.pos == checkpoint.Latest:
		set(string(checkpoint.Latest), 0, "")
	case target.seq != "":
		_, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(s.Shard),
			ShardIteratorType: kintypes.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(target.seq)})
		var invalid *kintypes.InvalidArgumentException
		if errors.As(err, &invalid) {
			return usageErr("--to %s is not a sequence number of shard %s: %s", target.seq, s.Shard, aws.ToString(invalid.Message))
		}
		if err != nil {
			return fmt.Errorf("checking sequence number %s of shard %s: %w", target.seq, s.Shard, err)
		}
		set(target.seq, target.sub, "")
	default:
		return resolveTime(ctx, kc, stream, target.at, s, set)
	}
	if s.Action == "create" && (s.newSeq == string(checkpoint.ShardEnd) || s.newSeq == string(checkpoint.Latest)) {
		// Nothing to read from it: the shard sync creates its lease if it
		// needs one.
		s.newSeq, s.New, s.Why = "", "", "no lease, nothing to read: left to the shard sync"
	}
	return nil
}

// searchWindows are how far before the reset time the record just before it
// is looked for, widening: most shards have one within the first.
var searchWindows = []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 0} // 0: from TRIM_HORIZON

// resolveTime finds the last record of the shard that arrived before at,
// and whether one at or after it exists.
func resolveTime(ctx context.Context, kc *kinesis.Client, stream string, at time.Time, s *resetStep, set func(string, uint64, string)) error {
	for _, w := range searchWindows {
		in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(s.Shard)}
		if w == 0 {
			in.ShardIteratorType = kintypes.ShardIteratorTypeTrimHorizon
		} else {
			in.ShardIteratorType = kintypes.ShardIteratorTypeAtTimestamp
			in.Timestamp = aws.Time(at.Add(-w))
		}
		before, first, err := scanAround(ctx, kc, in, at)
		if err != nil {
			return err
		}
		switch {
		case first == nil && !s.shard.open():
			set(string(checkpoint.ShardEnd), 0, "closed before the time")
			return nil
		case before != nil:
			var resumes string
			if first != nil {
				resumes = aws.ToString(first.SequenceNumber)
			}
			s.ResumesAt = resumes
			set(aws.ToString(before.SequenceNumber), lastSubSequence(before), "the record just before the time")
			return nil
		case w == 0 && first != nil:
			s.ResumesAt = aws.ToString(first.SequenceNumber)
			set(string(checkpoint.TrimHorizon), 0, "no record before the time (opened after it)")
			return nil
		case w == 0:
			set(string(checkpoint.TrimHorizon), 0, "no records")
			return nil
		}
		// No record in the window before the time: look further back.
	}
	return nil
}

// lastSubSequence is the sub-sequence number of the last user record of r:
// a checkpoint at it covers the whole record.
func lastSubSequence(r *kintypes.Record) uint64 {
	if users, ok := aggregation.Decode(r.Data); ok && len(users) > 0 {
		return uint64(len(users) - 1)
	}
	return 0
}

// scanAround reads a shard from the iterator in describes, returning the
// last record that arrived before at and the first at or after it (each
// nil when there is none), stopping at that first one, at the shard's tip
// or at its end.
func scanAround(ctx context.Context, kc *kinesis.Client, in *kinesis.GetShardIteratorInput, at time.Time) (before, first *kintypes.Record, err error) {
	it, err := kc.GetShardIterator(ctx, in)
	if err != nil {
		return nil, nil, fmt.Errorf("shard iterator for %s: %w", aws.ToString(in.ShardId), err)
	}
	iter := it.ShardIterator
	for iter != nil {
		out, err := getRecords(ctx, kc, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return nil, nil, fmt.Errorf("reading shard %s: %w", aws.ToString(in.ShardId), err)
		}
		for i := range out.Records {
			r := &out.Records[i]
			if r.ApproximateArrivalTimestamp != nil && !r.ApproximateArrivalTimestamp.Before(at) {
				return before, r, nil
			}
			before = r
		}
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			return before, nil, nil // at the tip
		}
		iter = out.NextShardIterator
		if err := backoff.Sleep(ctx, tailMinInterval/5); err != nil {
			return nil, nil, err
		}
	}
	return before, nil, nil // the end of a closed shard
}

// getRecords is one GetRecords call, tried again after throttling.
func getRecords(ctx context.Context, kc *kinesis.Client, in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	for throttled := 1; ; throttled++ {
		out, err := kc.GetRecords(ctx, in)
		if !awserr.IsThrottling(err) {
			return out, err
		}
		if err := backoff.Sleep(ctx, throttledBackoff.Delay(throttled)); err != nil {
			return nil, err
		}
	}
}

// applyReset writes the plan, step by step in its order (parents first).
func (a *app) applyReset(ctx context.Context, table string, plan []resetStep) error {
	client, store, err := a.leaseStore(ctx, table)
	if err != nil {
		return err
	}
	defer askAssignment(ctx, store)
	now := time.Now()
	for i := range plan {
		s := &plan[i]
		if s.Action == "skip" {
			continue
		}
		if s.Action == "create" {
			created, err := createResetLease(ctx, store, s, now)
			if err != nil {
				return err
			}
			if created {
				continue
			}
			s.Action = "reset" // created meanwhile by the shard sync: reset it
		}
		_, err := changeLease(ctx, client, store, table, s.Shard, func(lease.Lease) (leaseChange, error) {
			return resetChange(s.newSeq, s.newSub, now), nil
		})
		if err != nil {
			return fmt.Errorf("resetting lease %s (the leases before it in the plan are reset): %w", s.Shard, err)
		}
	}
	return nil
}

// resetChange is the write of a new checkpoint: it drops the owner (a
// worker holding the lease loses it at its next renewal), any hand-over
// and pending checkpoint, and starts the owner-switch count again.
func resetChange(seq string, sub uint64, now time.Time) leaseChange {
	c := leaseChange{
		set: map[string]ddbtypes.AttributeValue{
			attrCheckpoint:    strAttr(seq),
			attrCheckpointSub: &ddbtypes.AttributeValueMemberN{Value: strconv.FormatUint(sub, 10)},
			attrOwnerSwitches: numAttr(0),
		},
		remove: []string{attrOwner, attrCheckpointOwner, attrCheckpointOwnerT, attrPending, attrPendingSub, attrPendingState},
	}
	if seq == string(checkpoint.Latest) {
		// The time LATEST stands for, which kcl reads from: records written
		// while the lease waits for a worker are not skipped.
		c.set[attrLatestTimestamp] = numAttr(now.UnixMilli())
	} else {
		c.remove = append(c.remove, attrLatestTimestamp)
	}
	return c
}

// createResetLease creates the lease of a shard that had none; false when
// one was created meanwhile.
func createResetLease(ctx context.Context, store *lease.DynamoDBStore, s *resetStep, now time.Time) (bool, error) {
	l := lease.Lease{Key: s.Shard, Checkpoint: s.newSeq, CheckpointSubSequence: s.newSub,
		StartingHashKey: s.shard.StartingHashKey, EndingHashKey: s.shard.EndingHashKey}
	for _, p := range []string{s.shard.ParentShardID, s.shard.AdjacentParentShardID} {
		if p != "" {
			l.ParentShardIDs = append(l.ParentShardIDs, p)
		}
	}
	if s.newSeq == string(checkpoint.Latest) {
		l.LatestTimestamp = now
	}
	_, err := store.Create(ctx, l)
	if errors.Is(err, lease.ErrExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}
