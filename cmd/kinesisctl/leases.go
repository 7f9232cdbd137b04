package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/kinesisgo/kinesis/lease"
	"github.com/spf13/cobra"
)

// leaseInfo is the JSON form of a lease (leases APP).
type leaseInfo struct {
	Shard                        string `json:"shard"`
	Owner                        string `json:"owner,omitempty"`
	Counter                      int64  `json:"counter"`
	Checkpoint                   string `json:"checkpoint"`
	CheckpointSubSequence        uint64 `json:"checkpointSubSequenceNumber"`
	PendingCheckpoint            string `json:"pendingCheckpoint,omitempty"`
	PendingCheckpointSubSequence uint64 `json:"pendingCheckpointSubSequenceNumber,omitempty"`
	OwnerSwitchesSinceCheckpoint int64  `json:"ownerSwitchesSinceCheckpoint"`
	// CheckpointOwner is set while the lease is handed over: the worker
	// finishing its batch before Owner, the next owner, takes it up.
	CheckpointOwner string `json:"checkpointOwner,omitempty"`
	// ThroughputKBps is the read rate its holder measured (KiB/s), absent
	// when never measured.
	ThroughputKBps  *float64 `json:"throughputKBps,omitempty"`
	Parents         []string `json:"parents,omitempty"`
	Children        []string `json:"children,omitempty"`
	StartingHashKey string   `json:"startingHashKey,omitempty"`
	EndingHashKey   string   `json:"endingHashKey,omitempty"`
	// Malformed says what is wrong with an item kcl cannot read as a
	// lease; Shard is then its leaseKey and the other fields are empty.
	Malformed string `json:"malformed,omitempty"`
}

func leaseInfoFrom(l lease.Lease) leaseInfo {
	li := leaseInfo{
		Shard: l.Key, Owner: l.Owner, Counter: l.Counter,
		Checkpoint: l.Checkpoint, CheckpointSubSequence: l.CheckpointSubSequence,
		PendingCheckpoint: l.PendingCheckpoint, PendingCheckpointSubSequence: l.PendingCheckpointSubSequence,
		OwnerSwitchesSinceCheckpoint: l.OwnerSwitchesSinceCheckpoint, CheckpointOwner: l.CheckpointOwner,
		Parents: l.ParentShardIDs, Children: l.ChildShardIDs,
		StartingHashKey: l.StartingHashKey, EndingHashKey: l.EndingHashKey,
	}
	if l.ThroughputKnown {
		kbps := l.ThroughputKBps
		li.ThroughputKBps = &kbps
	}
	return li
}

// leaseKeyAttr is the lease table's hash key, a string: kcl's and the Java
// KCL's.
const leaseKeyAttr = "leaseKey"

// readLeases lists the leases of an application's lease table, and the
// items kcl cannot read as leases (kcl skips them, so their shards are not
// consumed). A table without the lease table's key schema is reported as
// not found: it is not a lease table.
func (a *app) readLeases(ctx context.Context, table string) ([]lease.Lease, []lease.MalformedItem, error) {
	if _, err := a.describeLeaseTable(ctx, table); err != nil {
		return nil, nil, err
	}
	// The store's log of malformed items is not needed: they are shown.
	_, store, err := a.leaseStore(ctx, table)
	if err != nil {
		return nil, nil, err
	}
	return store.ListWithMalformed(ctx)
}

// checkLeaseKeySchema checks that a table's key is the string hash key
// leaseKey alone.
func checkLeaseKeySchema(t *ddbtypes.TableDescription) error {
	var keys []string
	for _, k := range t.KeySchema {
		keys = append(keys, fmt.Sprintf("%s (%s)", aws.ToString(k.AttributeName), strings.ToLower(string(k.KeyType))))
	}
	if len(t.KeySchema) != 1 || aws.ToString(t.KeySchema[0].AttributeName) != leaseKeyAttr || t.KeySchema[0].KeyType != ddbtypes.KeyTypeHash {
		return fmt.Errorf("its key is %s, want the hash key %s alone", strings.Join(keys, " and "), leaseKeyAttr)
	}
	for _, d := range t.AttributeDefinitions {
		if aws.ToString(d.AttributeName) == leaseKeyAttr && d.AttributeType != ddbtypes.ScalarAttributeTypeS {
			return fmt.Errorf("its hash key %s is of type %s, want a string (S)", leaseKeyAttr, d.AttributeType)
		}
	}
	return nil
}

// malformedProblem is what is wrong with a malformed item, without the
// "malformed item" every such error starts with.
func malformedProblem(m lease.MalformedItem) string {
	return strings.TrimPrefix(m.Err.Error(), lease.ErrMalformed.Error()+": ")
}

// malformedErr is the error of a command that found malformed items.
func malformedErr(table string, bad []lease.MalformedItem) error {
	return fail(exitFailure, nil, "%d malformed lease items in table %q: kcl skips them, so their shards are not consumed "+
		"until each item is mended or deleted (workers then create the missing leases)", len(bad), table)
}

func (a *app) leasesCommand() *cobra.Command {
	var table string
	cmd := &cobra.Command{
		Use:   "leases APP",
		Short: "Show an application's leases: shard, owner, checkpoint, lineage, owner switches",
		Long: `Show the lease table of a kcl (or Java KCL 2.x) application: one lease per
shard, with its owner (while a lease is handed over to balance the load:
the next owner, and the worker finishing its batch), lease counter,
checkpoint (sequence number/sub-sequence or TRIM_HORIZON, LATEST,
AT_TIMESTAMP, SHARD_END), the read rate its holder measured (KiB/s, "-"
when never measured), parents and children, and how often it changed owner
since its last checkpoint. Then the number of
unfinished leases each worker holds, and the number of finished ones
(SHARD_END, kept until their children have started). Then, as "leases
workers" shows it (text output only; --json prints the leases): the leader
and each worker's last heartbeat, leases, read rate and state.

Items kcl cannot read as leases (a missing or mistyped attribute) are listed
with what is wrong with them, and the exit code is 1: kcl skips them, so
their shards are not consumed until they are mended or deleted. A table
whose key is not the string hash key leaseKey is not a lease table (exit 3).

Subcommands change the table while the workers run (every write conditional
on the lease counter read): reset moves checkpoints, release and delete act on
single leases, export and import back a table up and restore it.`,
		Args: args("APP"),
	}
	cmd.AddCommand(a.leasesResetCommand(), a.leasesReleaseCommand(), a.leasesDeleteCommand(),
		a.leasesExportCommand(), a.leasesImportCommand(), a.leasesWorkersCommand())
	cmd.Flags().StringVar(&table, "table", "", "lease table name (default: APP, as kcl names it)")
	cmd.RunE = a.runE("DYNAMODB", func(cmd *cobra.Command, argv []string) error {
		if table == "" {
			table = argv[0]
		}
		leases, bad, err := a.readLeases(cmd.Context(), table)
		if err != nil {
			return err
		}
		infos := make([]leaseInfo, 0, len(leases)+len(bad))
		for _, l := range leases {
			infos = append(infos, leaseInfoFrom(l))
		}
		for _, m := range bad {
			infos = append(infos, leaseInfo{Shard: m.Key, Malformed: malformedProblem(m)})
		}
		fleet, err := a.readFleet(cmd.Context(), table)
		if err != nil {
			return err
		}
		if err := a.emit(infos, func(w io.Writer) error {
			if err := printLeases(w, infos); err != nil {
				return err
			}
			fmt.Fprintln(w)
			return printFleet(w, fleet, time.Now())
		}); err != nil {
			return err
		}
		if len(bad) > 0 {
			return malformedErr(table, bad)
		}
		return nil
	})
	return cmd
}

func printLeases(w io.Writer, infos []leaseInfo) error {
	var leases, malformed []leaseInfo
	for _, l := range infos {
		if l.Malformed != "" {
			malformed = append(malformed, l)
		} else {
			leases = append(leases, l)
		}
	}
	if len(leases) > 0 {
		if err := printLeaseTable(w, leases); err != nil {
			return err
		}
	}
	if len(malformed) > 0 {
		if len(leases) > 0 {
			fmt.Fprintln(w)
		}
		t := newTable(w, "MALFORMED ITEM", "PROBLEM")
		for _, l := range malformed {
			t.row(l.Shard, l.Malformed)
		}
		return t.flush()
	}
	if len(leases) == 0 {
		_, err := fmt.Fprintln(w, "no leases yet: they are created when a worker first syncs the stream's shards")
		return err
	}
	return nil
}

// printLeaseTable prints the leases, then how many each worker holds.
func printLeaseTable(w io.Writer, leases []leaseInfo) error {
	t := newTable(w, "SHARD", "OWNER", "COUNTER", "CHECKPOINT", "PENDING", "KIB/S", "PARENTS", "CHILDREN", "SWITCHES")
	perOwner := map[string]int{}
	for _, l := range leases {
		owner := l.Owner
		if owner == "" {
			owner = "(unowned)"
		}
		shownOwner := owner
		if l.CheckpointOwner != "" {
			shownOwner = owner + " (handed over by " + l.CheckpointOwner + ")"
		}
		rate := "-"
		if l.ThroughputKBps != nil {
			rate = strconv.FormatFloat(*l.ThroughputKBps, 'f', 1, 64)
		}
		if l.Checkpoint == string(checkpoint.ShardEnd) {
			perOwner["(finished)"]++ // processed to the end; kept until its children have started
		} else {
			perOwner[owner]++
		}
		pending := ""
		if l.PendingCheckpoint != "" {
			pending = formatCheckpoint(l.PendingCheckpoint, l.PendingCheckpointSubSequence)
		}
		t.row(l.Shard, shownOwner, strconv.FormatInt(l.Counter, 10), formatCheckpoint(l.Checkpoint, l.CheckpointSubSequence),
			pending, rate, strings.Join(l.Parents, ","), strings.Join(l.Children, ","), strconv.FormatInt(l.OwnerSwitchesSinceCheckpoint, 10))
	}
	if err := t.flush(); err != nil {
		return err
	}
	owners := make([]string, 0, len(perOwner))
	for o := range perOwner {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	fmt.Fprintln(w)
	t = newTable(w, "WORKER", "LEASES")
	for _, o := range owners {
		t.row(o, strconv.Itoa(perOwner[o]))
	}
	return t.flush()
}

// formatCheckpoint prints a sequence number with its sub-sequence number
// when that is not 0 (the position inside an aggregated record).
func formatCheckpoint(seq string, sub uint64) string {
	if sub == 0 || !isSequenceNumber(seq) {
		return seq
	}
	return seq + "/" + strconv.FormatUint(sub, 10)
}

func isSequenceNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// lagInfo is the JSON form of one shard's lag (lag APP).
type lagInfo struct {
	Shard      string `json:"shard"`
	Owner      string `json:"owner,omitempty"`
	Checkpoint string `json:"checkpoint"`
	// RecordsBehind counts the user records after the checkpoint; nil when
	// it cannot be known (AT_TIMESTAMP).
	RecordsBehind *int64 `json:"recordsBehind"`
	// CountCapped is set when counting stopped at --count-limit.
	CountCapped bool `json:"countCapped,omitempty"`
	// MillisBehind is Kinesis's MillisBehindLatest for a read starting at
	// the checkpoint: how far the first unprocessed record is behind the
	// shard's newest one. Nil when it cannot be known.
	MillisBehind *int64 `json:"millisBehind"`
}

func (a *app) lagCommand() *cobra.Command {
	var (
		table      string
		stream     string
		countLimit int64
	)
	cmd := &cobra.Command{
		Use:   "lag APP [--stream STREAM]",
		Short: "Show per shard how many records and milliseconds an application is behind the tip",
		Long: `Show, for each lease of the application, how far its checkpoint is behind the
shard's newest record: the number of user records after the checkpoint (KPL
aggregates counted by their user records) and Kinesis's MillisBehindLatest
for a read starting at the checkpoint. Finished shards (SHARD_END) and leases
still at LATEST are 0 behind; AT_TIMESTAMP is unknown (-).

Counting reads the records after the checkpoint; --count-limit bounds that
work per shard.

The stream is --stream, or the one recorded in the lease table's tag
` + streamTagKey + ` (a table tag, which the Java KCL ignores); the first command
given --stream records it there.`,
		Args: args("APP"),
	}
	cmd.Flags().StringVar(&table, "table", "", "lease table name (default: APP)")
	cmd.Flags().StringVar(&stream, "stream", "", "the stream the application consumes (default: the one recorded in the table's tag)")
	cmd.Flags().Int64Var(&countLimit, "count-limit", 100000, "stop counting a shard's records behind at this many")
	cmd.RunE = a.runE("DYNAMODB", func(cmd *cobra.Command, argv []string) error {
		if countLimit < 1 {
			return usageErr("--count-limit must be at least 1, got %d", countLimit)
		}
		if table == "" {
			table = argv[0]
		}
		ctx := cmd.Context()
		_, stream, err := a.appStream(ctx, table, stream, true)
		if err != nil {
			return err
		}
		leases, bad, err := a.readLeases(ctx, table)
		if err != nil {
			return err
		}
		for _, m := range bad {
			fmt.Fprintf(a.stderr, "kinesisctl: malformed lease item %s skipped: %s\n", m.Key, malformedProblem(m))
		}
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		if _, err := describeStream(ctx, client, stream); err != nil {
			return err
		}
		lags := make([]lagInfo, 0, len(leases))
		for _, l := range leases {
			li, err := shardLag(ctx, client, stream, l, countLimit)
			if err != nil {
				return err
			}
			lags = append(lags, li)
		}
		err = a.emit(lags, func(w io.Writer) error {
			t := newTable(w, "SHARD", "OWNER", "CHECKPOINT", "RECORDS BEHIND", "MS BEHIND")
			var total int64
			for _, l := range lags {
				records := "-"
				if l.RecordsBehind != nil {
					records = strconv.FormatInt(*l.RecordsBehind, 10)
					total += *l.RecordsBehind
					if l.CountCapped {
						records = ">=" + records
					}
				}
				ms := "-"
				if l.MillisBehind != nil {
					ms = strconv.FormatInt(*l.MillisBehind, 10)
				}
				t.row(l.Shard, l.Owner, l.Checkpoint, records, ms)
			}
			t.row("total", "", "", strconv.FormatInt(total, 10), "")
			return t.flush()
		})
		if err == nil && len(bad) > 0 {
			err = malformedErr(table, bad)
		}
		return err
	})
	return cmd
}

// shardLag reads the shard from the lease's checkpoint to the tip, counting
// user records and taking Kinesis's MillisBehindLatest of the first read.
func shardLag(ctx context.Context, client *kinesis.Client, stream string, l lease.Lease, countLimit int64) (lagInfo, error) {
	li := lagInfo{Shard: l.Key, Owner: l.Owner, Checkpoint: formatCheckpoint(l.Checkpoint, l.CheckpointSubSequence)}
	zero := int64(0)
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(l.Key)}
	switch l.Checkpoint {
	case string(checkpoint.ShardEnd), string(checkpoint.Latest):
		li.RecordsBehind, li.MillisBehind = &zero, &zero
		return li, nil
	case string(checkpoint.AtTimestamp):
		return li, nil
	case string(checkpoint.TrimHorizon):
		in.ShardIteratorType = kintypes.ShardIteratorTypeTrimHorizon
	default:
		if !isSequenceNumber(l.Checkpoint) {
			return li, nil
		}
		in.ShardIteratorType = kintypes.ShardIteratorTypeAtSequenceNumber
		in.StartingSequenceNumber = aws.String(l.Checkpoint)
	}
	it, err := client.GetShardIterator(ctx, in)
	var nf *kintypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return li, nil // the shard is past the retention period: nothing to read
	}
	if err != nil {
		return li, fmt.Errorf("shard iterator for %s: %w", l.Key, err)
	}
	iter := it.ShardIterator
	var count int64
	for iter != nil {
		gin := &kinesis.GetRecordsInput{ShardIterator: iter}
		if li.MillisBehind == nil {
			// One record per read until the first unprocessed one: then
			// MillisBehindLatest is that record's.
			gin.Limit = aws.Int32(1)
		}
		out, err := getRecords(ctx, client, gin)
		if err != nil {
			return li, fmt.Errorf("reading shard %s: %w", l.Key, err)
		}
		before := count
		for _, r := range out.Records {
			count += unprocessed(r, l)
		}
		if li.MillisBehind == nil && count > before {
			ms := aws.ToInt64(out.MillisBehindLatest)
			li.MillisBehind = &ms
		}
		if count >= countLimit {
			li.CountCapped = true
			break
		}
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			break // at the tip
		}
		iter = out.NextShardIterator
		if err := backoff.Sleep(ctx, tailMinInterval/5); err != nil {
			return li, err
		}
	}
	li.RecordsBehind = &count
	if li.MillisBehind == nil {
		li.MillisBehind = &zero
	}
	return li, nil
}

// unprocessed counts the user records of r after the lease's checkpoint:
// all of them, except in the checkpointed record itself, where only those
// above the checkpointed sub-sequence number count.
func unprocessed(r kintypes.Record, l lease.Lease) int64 {
	users, ok := aggregation.Decode(r.Data)
	n := int64(1)
	if ok {
		n = int64(len(users))
	}
	if aws.ToString(r.SequenceNumber) != l.Checkpoint {
		return n
	}
	if !ok {
		return 0
	}
	return n - int64(min(l.CheckpointSubSequence+1, uint64(n)))
}
