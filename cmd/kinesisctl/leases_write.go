package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/kinesisgo/kinesis/lease"
	"github.com/spf13/cobra"
)

// Attributes of a lease item that the lease surgery commands write: the
// Java KCL 2.x/3.x schema, and latestTimestampMillis, which kcl reads as the
// time a LATEST checkpoint stands for.
const (
	attrOwner            = "leaseOwner"
	attrCounter          = "leaseCounter"
	attrCheckpoint       = "checkpoint"
	attrCheckpointSub    = "checkpointSubSequenceNumber"
	attrPending          = "pendingCheckpoint"
	attrPendingSub       = "pendingCheckpointSubSequenceNumber"
	attrPendingState     = "pendingCheckpointState"
	attrOwnerSwitches    = "ownerSwitchesSinceCheckpoint"
	attrCheckpointOwner  = "checkpointOwner"
	attrCheckpointOwnerT = "checkpointOwnerTimeoutTimestampMillis"
	attrLatestTimestamp  = "latestTimestampMillis"
	attrParents          = "parentShardId"
	attrStartingHashKey  = "startingHashKey"
	attrEndingHashKey    = "endingHashKey"
)

// streamTagKey is the tag of a lease table that names the stream its
// application consumes. A single-stream Java KCL table does not name its
// stream anywhere, and a tag is table metadata that the Java KCL and kcl
// ignore (an extra item would be read as a lease).
const streamTagKey = "kinesis-stream"

// maxConflictRetries bounds how often a lease write is tried again after a
// worker wrote the lease between the read and the write (a renewal every
// few seconds makes that common).
const maxConflictRetries = 20

// leaseTable is a lease table described: its name and ARN.
type leaseTable struct {
	name string
	arn  string
}

// describeLeaseTable checks that table exists and is a lease table.
func (a *app) describeLeaseTable(ctx context.Context, table string) (leaseTable, error) {
	client, err := a.dynamodbClient(ctx)
	if err != nil {
		return leaseTable{}, err
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var nf *ddbtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return leaseTable{}, fail(exitNotFound, err, "no lease table %q: check the application name (kcl names the table after Config.App unless LeaseTable is set; pass --table) and --region/the endpoint", table)
	}
	if err != nil {
		return leaseTable{}, err
	}
	if err := checkLeaseKeySchema(desc.Table); err != nil {
		return leaseTable{}, fail(exitNotFound, nil, "table %q is not a lease table: %v; check the application name or --table", table, err)
	}
	return leaseTable{name: table, arn: aws.ToString(desc.Table.TableArn)}, nil
}

// tableStream returns the stream recorded in the table's tag, "" when none.
func (a *app) tableStream(ctx context.Context, t leaseTable) (string, error) {
	client, err := a.dynamodbClient(ctx)
	if err != nil {
		return "", err
	}
	in := &dynamodb.ListTagsOfResourceInput{ResourceArn: aws.String(t.arn)}
	for {
		out, err := client.ListTagsOfResource(ctx, in)
		if err != nil {
			return "", fmt.Errorf("reading the tags of table %s: %w", t.name, err)
		}
		for _, tag := range out.Tags {
			if aws.ToString(tag.Key) == streamTagKey {
				return aws.ToString(tag.Value), nil
			}
		}
		if out.NextToken == nil {
			return "", nil
		}
		in.NextToken = out.NextToken
	}
}

// recordStream tags the table with the stream, so that later commands need
// no --stream. A failure (no dynamodb:TagResource permission) is a
// warning: the command goes on with the stream it was given.
func (a *app) recordStream(ctx context.Context, t leaseTable, stream string) {
	client, err := a.dynamodbClient(ctx)
	if err == nil {
		_, err = client.TagResource(ctx, &dynamodb.TagResourceInput{ResourceArn: aws.String(t.arn),
			Tags: []ddbtypes.Tag{{Key: aws.String(streamTagKey), Value: aws.String(stream)}}})
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(a.stderr, "kinesisctl: could not record stream %s in the tag %s of table %s (%v); pass --stream again next time\n",
			stream, streamTagKey, t.name, err)
	}
}

// applicationStream returns the stream an application consumes: flag if
// set (recorded in the table's tag when none is, if record), else the
// table's tag.
func (a *app) applicationStream(ctx context.Context, t leaseTable, flag string, record bool) (string, error) {
	recorded, err := a.tableStream(ctx, t)
	if err != nil {
		return "", err
	}
	switch {
	case flag != "" && recorded == "":
		if record {
			a.recordStream(ctx, t, flag)
		}
		return flag, nil
	case flag != "" && recorded != flag:
		fmt.Fprintf(a.stderr, "kinesisctl: table %s records stream %s (tag %s); using --stream %s\n", t.name, recorded, streamTagKey, flag)
		return flag, nil
	case flag != "":
		return flag, nil
	case recorded == "":
		return "", usageErr("table %s does not record which stream its application reads: pass --stream once "+
			"(kinesisctl then records it in the table's tag %s)", t.name, streamTagKey)
	}
	return recorded, nil
}

// appStream describes the lease table of an application (table, else
// app) and finds its stream (flag, else the table's tag; a flag is
// recorded in the tag if record and the tag is not set).
func (a *app) appStream(ctx context.Context, table, flag string, record bool) (leaseTable, string, error) {
	lt, err := a.describeLeaseTable(ctx, table)
	if err != nil {
		return leaseTable{}, "", err
	}
	stream, err := a.applicationStream(ctx, lt, flag, record)
	return lt, stream, err
}

// leaseChange is one change of a lease item: attributes set and removed.
// Every change also increments leaseCounter, and is conditional on the
// counter read: a worker holding the lease fails its next renewal or
// checkpoint, loses the lease, and whoever takes it next reads the item as
// changed.
type leaseChange struct {
	set    map[string]ddbtypes.AttributeValue
	remove []string
}

// writeLease applies c to the lease l was read as; lease.ErrConflict when
// the counter moved since.
func writeLease(ctx context.Context, client *dynamodb.Client, table string, l lease.Lease, c leaseChange) error {
	names := map[string]string{"#c": attrCounter}
	values := map[string]ddbtypes.AttributeValue{":cur": numAttr(l.Counter), ":next": numAttr(l.Counter + 1)}
	sets := []string{"#c = :next"}
	i := 0
	for attr, v := range c.set {
		i++
		n, p := "#s"+strconv.Itoa(i), ":s"+strconv.Itoa(i)
		names[n], values[p] = attr, v
		sets = append(sets, n+" = "+p)
	}
	expr := "SET " + strings.Join(sets, ", ")
	var removes []string
	for _, attr := range c.remove {
		i++
		n := "#r" + strconv.Itoa(i)
		names[n] = attr
		removes = append(removes, n)
	}
	if len(removes) > 0 {
		expr += " REMOVE " + strings.Join(removes, ", ")
	}
	_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]ddbtypes.AttributeValue{leaseKeyAttr: &ddbtypes.AttributeValueMemberS{Value: l.Key}},
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("#c = :cur"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} }) // a retried write that took effect would fail its own condition
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("lease %s: %w", l.Key, lease.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("writing lease %s: %w", l.Key, err)
	}
	return nil
}

func numAttr(n int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func strAttr(s string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: s} }

// errSkip tells changeLease that the lease needs no change.
var errSkip = errors.New("no change needed")

// changeLease reads a lease, asks decide for the change, and writes it
// conditionally; when a worker wrote the lease in between, it reads it
// again and asks again. It returns the lease as last read.
func changeLease(ctx context.Context, client *dynamodb.Client, store *lease.DynamoDBStore, table, key string,
	decide func(lease.Lease) (leaseChange, error)) (lease.Lease, error) {
	for attempt := 0; ; attempt++ {
		l, err := store.Get(ctx, key)
		if errors.Is(err, lease.ErrNotFound) {
			return l, fail(exitNotFound, err, "no lease %s in table %s (kinesisctl leases %s lists them)", key, table, table)
		}
		if err != nil {
			return l, err
		}
		c, err := decide(l)
		if err != nil {
			return l, err
		}
		err = writeLease(ctx, client, table, l, c)
		if !errors.Is(err, lease.ErrConflict) {
			return l, err
		}
		if attempt >= maxConflictRetries {
			return l, fail(exitConflict, err, "lease %s kept changing while it was written (%d attempts); retry", key, attempt+1)
		}
	}
}

// leaseStore is the lease package's store over the table, for reads.
func (a *app) leaseStore(ctx context.Context, table string) (*dynamodb.Client, *lease.DynamoDBStore, error) {
	client, err := a.dynamodbClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: table})
	if err != nil {
		return nil, nil, usageErr("%v", err)
	}
	return client, store, nil
}

// shardArgs parses shard arguments: IDs or numbers.
func shardArgs(argv []string) ([]string, error) {
	out := make([]string, 0, len(argv))
	for _, s := range argv {
		id, err := parseShardID(s)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// leaseAction is the JSON form of what release and delete did to a lease.
type leaseAction struct {
	Shard  string `json:"shard"`
	Owner  string `json:"owner,omitempty"` // the owner it had
	Action string `json:"action"`          // "released", "deleted", "unowned already"
}

func printLeaseActions(w io.Writer, acts []leaseAction) error {
	t := newTable(w, "SHARD", "OWNER", "ACTION")
	for _, a := range acts {
		t.row(a.Shard, a.Owner, a.Action)
	}
	return t.flush()
}

// eachLease is the body of a command APP SHARD... that acts on each lease
// in turn and prints what it did; *table defaults to APP.
func (a *app) eachLease(table *string, act func(ctx context.Context, client *dynamodb.Client, store *lease.DynamoDBStore, id string) (leaseAction, error)) func(*cobra.Command, []string) error {
	return a.runE("DYNAMODB", func(cmd *cobra.Command, argv []string) error {
		if *table == "" {
			*table = argv[0]
		}
		shards, err := shardArgs(argv[1:])
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if _, err := a.describeLeaseTable(ctx, *table); err != nil {
			return err
		}
		client, store, err := a.leaseStore(ctx, *table)
		if err != nil {
			return err
		}
		acts := make([]leaseAction, 0, len(shards))
		for _, id := range shards {
			done, err := act(ctx, client, store, id)
			if err != nil {
				askAssignment(ctx, store)
				return err
			}
			acts = append(acts, done)
		}
		askAssignment(ctx, store)
		return a.emit(acts, func(w io.Writer) error { return printLeaseActions(w, acts) })
	})
}

func (a *app) leasesReleaseCommand() *cobra.Command {
	var table string
	cmd := &cobra.Command{
		Use:   "release APP SHARD...",
		Short: "Release leases: remove their owner, so that any worker takes them at once",
		Long: `Release leases held by a stuck or vanished worker: remove the owner (and a
hand-over in progress), so that any worker of the application takes the lease
at its next pass instead of waiting for it to expire. The write is
conditional on the lease counter read: if the holder is alive, its next
renewal fails and it stops processing the shard, and the next holder resumes
from the checkpoint. SHARD is a shard ID or its number.`,
		Args: cobra.MinimumNArgs(2),
	}
	cmd.Flags().StringVar(&table, "table", "", "lease table name (default: APP)")
	cmd.RunE = a.eachLease(&table, func(ctx context.Context, client *dynamodb.Client, store *lease.DynamoDBStore, id string) (leaseAction, error) {
		act := leaseAction{Shard: id, Action: "released"}
		l, err := changeLease(ctx, client, store, table, id, func(l lease.Lease) (leaseChange, error) {
			if l.Owner == "" && l.CheckpointOwner == "" {
				return leaseChange{}, errSkip
			}
			return leaseChange{remove: []string{attrOwner, attrCheckpointOwner, attrCheckpointOwnerT}}, nil
		})
		act.Owner = l.Owner
		if errors.Is(err, errSkip) {
			act.Action, err = "unowned already", nil
		}
		return act, err
	})
	return cmd
}

func (a *app) leasesDeleteCommand() *cobra.Command {
	var (
		table string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "delete APP SHARD...",
		Short: "Delete leases (an owned, unfinished lease only with --force)",
		Long: `Delete lease items: after a stream was deleted or recreated, or to drop a
lease that kcl cannot read (a malformed item). The delete is conditional on
the lease counter read.

An owned lease that is not finished (not at SHARD_END) is being processed:
it is refused without --force. A worker whose lease is deleted fails its next
renewal and stops processing the shard; the shard sync creates a new lease for
a shard still in the stream, at the application's initial position (or at
TRIM_HORIZON below a leased parent), so its checkpoint is lost.`,
		Args: cobra.MinimumNArgs(2),
	}
	cmd.Flags().StringVar(&table, "table", "", "lease table name (default: APP)")
	cmd.Flags().BoolVar(&force, "force", false, "delete owned, unfinished leases too")
	cmd.RunE = a.eachLease(&table, func(ctx context.Context, client *dynamodb.Client, store *lease.DynamoDBStore, id string) (leaseAction, error) {
		owner, err := deleteLease(ctx, client, store, table, id, force)
		return leaseAction{Shard: id, Owner: owner, Action: "deleted"}, err
	})
	return cmd
}

// deleteLease deletes one lease item, conditional on the counter read,
// reading again when a worker wrote it in between. An item kcl cannot read
// as a lease is deleted by key alone. It returns the owner the lease had.
func deleteLease(ctx context.Context, client *dynamodb.Client, store *lease.DynamoDBStore, table, id string, force bool) (string, error) {
	for attempt := 0; ; attempt++ {
		l, err := store.Get(ctx, id)
		switch {
		case errors.Is(err, lease.ErrNotFound):
			return "", fail(exitNotFound, err, "no lease %s in table %s (kinesisctl leases %s lists them)", id, table, table)
		case errors.Is(err, lease.ErrMalformed):
			_, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
				Key: map[string]ddbtypes.AttributeValue{leaseKeyAttr: strAttr(id)}})
			return "", err
		case err != nil:
			return "", err
		}
		if l.Owner != "" && !l.Finished() && !force {
			return "", fail(exitConflict, nil, "lease %s is owned by %s and not finished (checkpoint %s): a worker is processing the shard; "+
				"release it (kinesisctl leases release) or pass --force", id, l.Owner, formatCheckpoint(l.Checkpoint, l.CheckpointSubSequence))
		}
		err = store.Delete(ctx, l)
		if !errors.Is(err, lease.ErrConflict) {
			return l.Owner, err
		}
		if attempt >= maxConflictRetries {
			return "", fail(exitConflict, err, "lease %s kept changing while it was deleted (%d attempts); retry", id, attempt+1)
		}
	}
}

// askAssignment asks the application's leader for an assignment pass
// (the coordinator state table's request count), so that leases released
// or reset are assigned at its next poll rather than at its next periodic
// scan. A table without coordinator state (no worker that elects a leader
// has run) needs none; a failure only delays the assignment.
func askAssignment(ctx context.Context, store *lease.DynamoDBStore) {
	_ = store.Notify(ctx, nil, true)
}
