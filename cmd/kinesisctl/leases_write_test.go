package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/lease"
)

// release and delete write conditionally on the counter; delete refuses an
// owned, unfinished lease without --force; export and import carry every
// attribute (unknown ones too) into an empty table, unowned.
func TestLeasesReleaseDeleteExportImport(t *testing.T) {
	t.Parallel()
	ddb, table := testenv.NewLeaseTable(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := testStore(t, table)
	for _, l := range []lease.Lease{
		{Key: "shardId-000000000000", Owner: "w1", Counter: 5, Checkpoint: "49000000000000000000000000001", CheckpointSubSequence: 3,
			Extra: map[string]ddbtypes.AttributeValue{"futureAttr": &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{
				"list": &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{}}, "b": &ddbtypes.AttributeValueMemberB{Value: []byte{0, 1}}}}}},
		{Key: "shardId-000000000001", Owner: "w2", Counter: 2, Checkpoint: string(checkpoint.TrimHorizon), CheckpointOwner: "w1"},
		{Key: "shardId-000000000002", Owner: "w2", Counter: 9, Checkpoint: string(checkpoint.ShardEnd), ChildShardIDs: []string{"shardId-000000000003"}},
	} {
		if _, err := store.Create(ctx, l); err != nil {
			t.Fatal(err)
		}
	}

	acts := decode[[]leaseAction](t, mustRun(t, "leases", "release", table, "0", "shardId-000000000001", "--json"))
	if len(acts) != 2 || acts[0].Action != "released" || acts[0].Owner != "w1" || acts[1].Owner != "w2" {
		t.Errorf("release: %+v", acts)
	}
	l0, err := store.Get(ctx, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if l0.Owner != "" || l0.Counter != 6 || l0.Checkpoint != "49000000000000000000000000001" || l0.Extra["futureAttr"] == nil {
		t.Errorf("released lease: %+v", l0)
	}
	l1, err := store.Get(ctx, "shardId-000000000001")
	if err != nil || l1.Owner != "" || l1.CheckpointOwner != "" {
		t.Errorf("released hand-over: %+v, %v", l1, err)
	}
	if acts := decode[[]leaseAction](t, mustRun(t, "leases", "release", table, "0", "--json")); acts[0].Action != "unowned already" {
		t.Errorf("second release: %+v", acts)
	}
	wantExit(t, kctl(t, "leases", "release", table, "7"), exitNotFound, "no lease shardId-000000000007")

	// The export, before the delete: leases 0 and 1 unowned, 2 owned.
	exported := mustRun(t, "leases", "export", table).stdout
	var exp leaseExport
	if err := json.Unmarshal([]byte(exported), &exp); err != nil || len(exp.Items) != 3 || exp.Format != exportFormat {
		t.Fatalf("export: %v\n%s", err, exported)
	}

	// Delete: owned and unfinished needs --force; owned and finished does not.
	if _, err := store.Take(ctx, l0, "w3"); err != nil {
		t.Fatal(err)
	}
	wantExit(t, kctl(t, "leases", "delete", table, "0"), exitConflict, "owned by w3", "--force")
	mustRun(t, "leases", "delete", table, "2")
	mustRun(t, "leases", "delete", table, "0", "--force")
	ls, err := store.List(ctx)
	if err != nil || len(ls) != 1 || ls[0].Key != "shardId-000000000001" {
		t.Errorf("after the deletes: %+v, %v", ls, err)
	}

	// Import: refused into a table in use, restores into a new one.
	wantExit(t, kctlIn(t, exported, "leases", "import", table), exitConflict, "in use")
	_, fresh := testenv.NewTableName(t)
	r := mustRunIn(t, exported, "leases", "import", fresh)
	if r.stdout != "imported 3 lease items into table "+fresh+"\n" {
		t.Errorf("import: %q", r.stdout)
	}
	restored, err := testStore(t, fresh).List(ctx)
	if err != nil || len(restored) != 3 {
		t.Fatalf("restored: %+v, %v", restored, err)
	}
	if l := restored[0]; l.Checkpoint != "49000000000000000000000000001" || l.CheckpointSubSequence != 3 || l.Counter != 6 || l.Owner != "" {
		t.Errorf("restored lease 0: %+v", l)
	}
	if l := restored[2]; l.Owner != "" || !l.Finished() || len(l.ChildShardIDs) != 1 {
		t.Errorf("restored lease 2 (imported unowned): %+v", l)
	}
	item, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(fresh),
		Key: map[string]ddbtypes.AttributeValue{"leaseKey": strAttr("shardId-000000000000")}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := item.Item["futureAttr"].(*ddbtypes.AttributeValueMemberM)
	if !ok || len(m.Value) != 2 {
		t.Errorf("unknown attribute not restored: %#v", item.Item["futureAttr"])
	} else if l, ok := m.Value["list"].(*ddbtypes.AttributeValueMemberL); !ok || len(l.Value) != 0 {
		t.Errorf("empty list not restored: %#v", m.Value["list"])
	}
	wantExit(t, kctlIn(t, `{"format":"other"}`, "leases", "import", fresh+"-x"), exitUsage, "not a leases export")
}

// mustRunIn is mustRun with stdin.
func mustRunIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := kctlIn(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("kinesisctl %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}
