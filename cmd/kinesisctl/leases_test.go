package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/kinesisgo/kinesis/lease"
)

func TestLeasesAndLag(t *testing.T) {
	t.Parallel()
	kc, stream := testenv.NewStream(t, 2)
	ddb, table := testenv.NewTableName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Shard 0: 10 plain records; shard 1: one container of 5 user records.
	low, high := "0", hashkey.Max.String()
	var seqs []string
	for i := range 10 {
		out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"),
			ExplicitHashKey: aws.String(low), Data: []byte{byte('a' + i)}})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	var e aggregation.Encoder
	for range 5 {
		e.Add(aggregation.Record{PartitionKey: "k", Data: []byte("user record")})
	}
	agg, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("a"),
		ExplicitHashKey: aws.String(high), Data: e.Encode()})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(agg.ShardId) != "shardId-000000000001" {
		t.Fatalf("container went to %s", aws.ToString(agg.ShardId))
	}

	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: ddb, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range []lease.Lease{
		{Key: "shardId-000000000000", Owner: "worker-1", Counter: 7, Checkpoint: seqs[3], OwnerSwitchesSinceCheckpoint: 2,
			ThroughputKBps: 12.25, ThroughputKnown: true},
		{Key: "shardId-000000000001", Owner: "worker-2", Counter: 3, Checkpoint: aws.ToString(agg.SequenceNumber), CheckpointSubSequence: 1,
			PendingCheckpoint: aws.ToString(agg.SequenceNumber), PendingCheckpointSubSequence: 3, CheckpointOwner: "worker-1"},
		{Key: "shardId-000000000098", Counter: 1, Checkpoint: string(checkpoint.AtTimestamp)},
		{Key: "shardId-000000000099", Owner: "worker-1", Counter: 9, Checkpoint: string(checkpoint.ShardEnd),
			ChildShardIDs: []string{"shardId-000000000000"}},
	} {
		if _, err := store.Create(ctx, l); err != nil {
			t.Fatal(err)
		}
	}

	leases := decode[[]leaseInfo](t, mustRun(t, "leases", table, "--json"))
	if len(leases) != 4 {
		t.Fatalf("leases --json: %+v", leases)
	}
	l0, l1 := leases[0], leases[1]
	if l0.Shard != "shardId-000000000000" || l0.Owner != "worker-1" || l0.Counter != 7 || l0.Checkpoint != seqs[3] || l0.OwnerSwitchesSinceCheckpoint != 2 {
		t.Errorf("lease 0: %+v", l0)
	}
	if l1.CheckpointSubSequence != 1 || l1.PendingCheckpointSubSequence != 3 || l1.Owner != "worker-2" || l1.CheckpointOwner != "worker-1" {
		t.Errorf("lease 1: %+v", l1)
	}
	if l0.ThroughputKBps == nil || *l0.ThroughputKBps != 12.25 || l1.ThroughputKBps != nil {
		t.Errorf("throughput of leases 0 and 1: %v, %v; want 12.25 and none", l0.ThroughputKBps, l1.ThroughputKBps)
	}
	if leases[3].Checkpoint != string(checkpoint.ShardEnd) || strings.Join(leases[3].Children, ",") != "shardId-000000000000" {
		t.Errorf("lease 99: %+v", leases[3])
	}
	human := mustRun(t, "leases", table).stdout
	for _, want := range []string{"(unowned)", "SHARD_END", aws.ToString(agg.SequenceNumber) + "/1", "WORKER",
		"worker-2 (handed over by worker-1)", "KIB/S", " 12.2 "} {
		if !strings.Contains(human, want) {
			t.Errorf("leases table lacks %q:\n%s", want, human)
		}
	}
	for _, want := range []string{`(?m)^worker-1 +1$`, `(?m)^worker-2 +1$`, `(?m)^\(unowned\) +1$`, `(?m)^\(finished\) +1$`} {
		if !regexp.MustCompile(want).MatchString(human) {
			t.Errorf("leases per worker do not match %s:\n%s", want, human)
		}
	}

	lags := decode[[]lagInfo](t, mustRun(t, "lag", table, "--stream", stream, "--json"))
	want := map[string]int64{"shardId-000000000000": 6, "shardId-000000000001": 3, "shardId-000000000099": 0}
	for _, l := range lags {
		w, known := want[l.Shard]
		switch {
		case !known:
			if l.RecordsBehind != nil || l.MillisBehind != nil {
				t.Errorf("lag of AT_TIMESTAMP lease %s: %+v, want unknown", l.Shard, l)
			}
		case l.RecordsBehind == nil || *l.RecordsBehind != w || l.MillisBehind == nil || *l.MillisBehind < 0:
			t.Errorf("lag of %s: %+v, want %d records behind and a millisecond figure", l.Shard, l, w)
		}
	}
	if len(lags) != 4 {
		t.Errorf("lag: %d rows, want 4", len(lags))
	}
	if !strings.Contains(mustRun(t, "lag", table, "--stream", stream).stdout, "total") {
		t.Error("lag table has no total")
	}
	capped := decode[[]lagInfo](t, mustRun(t, "lag", table, "--stream", stream, "--count-limit", "2", "--json"))
	if !capped[0].CountCapped || *capped[0].RecordsBehind < 2 {
		t.Errorf("lag --count-limit 2: %+v", capped[0])
	}

	// Records consumed and checkpointed: nothing behind.
	l, err := store.Get(ctx, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	l.Checkpoint = seqs[9]
	if _, err := store.Checkpoint(ctx, l); err != nil {
		t.Fatal(err)
	}
	lags = decode[[]lagInfo](t, mustRun(t, "lag", table, "--stream", stream, "--json"))
	if *lags[0].RecordsBehind != 0 || *lags[0].MillisBehind != 0 {
		t.Errorf("lag after checkpointing the last record: %+v", lags[0])
	}

	wantExit(t, kctl(t, "leases", table+"-missing"), exitNotFound, "no lease table", "--table")
	// The first --stream was recorded in the table's tag: lag needs no
	// --stream since; a table without the tag does.
	if got := decode[[]lagInfo](t, mustRun(t, "lag", table, "--json")); len(got) != 4 || *got[0].RecordsBehind != 0 {
		t.Errorf("lag without --stream: %+v", got)
	}
	_, untagged := testenv.NewLeaseTable(t)
	wantExit(t, kctl(t, "lag", untagged), exitUsage, "pass --stream once")
	wantExit(t, kctl(t, "lag", table, "--stream", stream+"-missing"), exitNotFound, stream+"-missing")
}

// leases says what is wrong with a table that is not a lease table, or
// holds items kcl cannot read, instead of "no leases yet".
func TestLeasesWrongTable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Another application's table: hash key id.
	ddb, other := testenv.NewTableName(t)
	if _, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(other),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitTableActive(ctx, ddb, other); err != nil {
		t.Fatal(err)
	}
	wantExit(t, kctl(t, "leases", other), exitNotFound, "not a lease table", "leaseKey", "id")
	wantExit(t, kctl(t, "lag", other, "--stream", "s"), exitNotFound, "not a lease table")

	// A lease table whose items kcl cannot read.
	_, table := testenv.NewLeaseTable(t)
	for _, item := range []map[string]ddbtypes.AttributeValue{
		{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000005"}}, // no leaseCounter
		{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000006"},
			"leaseCounter": &ddbtypes.AttributeValueMemberS{Value: "seven"}},
	} {
		if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	r := kctl(t, "leases", table)
	wantExit(t, r, exitFailure, "2 malformed lease items", "not consumed")
	for _, want := range []string{`(?m)^shardId-000000000005 .*leaseCounter`, `(?m)^shardId-000000000006 .*leaseCounter is not a number`} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("leases output does not match %s:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "no leases yet") {
		t.Errorf("leases says there are none:\n%s", r.stdout)
	}

	// With a readable lease beside them, both are shown.
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: ddb, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, lease.Lease{Key: "shardId-000000000001", Owner: "w", Counter: 1, Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
		t.Fatal(err)
	}
	r = kctl(t, "leases", table, "--json")
	wantExit(t, r, exitFailure, "2 malformed lease items")
	infos := decode[[]leaseInfo](t, r)
	if len(infos) != 3 || infos[0].Shard != "shardId-000000000001" || infos[0].Malformed != "" ||
		infos[1].Shard != "shardId-000000000005" || infos[1].Malformed == "" || infos[2].Malformed == "" {
		t.Errorf("leases --json: %+v", infos)
	}

	_, stream := testenv.NewStream(t, 2)
	r = kctl(t, "lag", table, "--stream", stream)
	wantExit(t, r, exitFailure, "malformed lease item shardId-000000000005 skipped", "2 malformed lease items")
	if !strings.Contains(r.stdout, "shardId-000000000001") {
		t.Errorf("lag does not show the readable lease:\n%s", r.stdout)
	}
}
