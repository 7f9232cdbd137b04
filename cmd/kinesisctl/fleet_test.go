package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/lease"
)

// TestLeasesWorkers: with two coordinators running on a table, `leases
// workers` names the leader and shows both workers' heartbeats and leases;
// `leases` shows the same after the lease table.
func TestLeasesWorkers(t *testing.T) {
	t.Parallel()
	ddb, table := testenv.NewTableName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: ddb, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, "leases", "workers", table).stdout; !strings.Contains(got, "leader: none") && !strings.Contains(got, "no worker heartbeats") {
		t.Errorf("leases workers before any worker:\n%s", got)
	}
	for i := range 4 {
		if _, err := store.Create(ctx, lease.Lease{Key: "shardId-00000000000" + string(rune('0'+i)), Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
			t.Fatal(err)
		}
	}
	var cs []*lease.Coordinator
	for _, id := range []string{"w-a", "w-b"} {
		c, err := lease.NewCoordinator(lease.Config{Store: store, WorkerID: id, FailoverTime: 3 * time.Second, MaxLeasesForWorker: 3})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(rctx) }()
		t.Cleanup(func() { stop(); <-done })
	}
	wait.For(t, 20*time.Second, "2 leases each, heartbeats counting them", func() bool {
		f := decode[fleetInfo](t, mustRun(t, "leases", "workers", table, "--json"))
		if len(cs[0].Held()) != 2 || len(cs[1].Held()) != 2 || len(f.Workers) != 2 {
			return false
		}
		for _, w := range f.Workers {
			if w.Leases != 2 || !w.Live {
				return false
			}
		}
		return true
	})
	f := decode[fleetInfo](t, mustRun(t, "leases", "workers", table, "--json"))
	leader := "w-a"
	if cs[1].Leading() {
		leader = "w-b"
	}
	if f.Leader != leader || f.LeaderCounter == 0 || !f.Tables {
		t.Errorf("fleet %+v, want leader %s", f, leader)
	}
	for _, w := range f.Workers {
		if w.Heartbeat == 0 || w.MaxLeases != 3 || w.LastHeartbeat.IsZero() {
			t.Errorf("worker %+v", w)
		}
	}
	text := mustRun(t, "leases", table).stdout
	for _, want := range []string{"leader: " + leader, "WORKER", "w-a", "w-b", "live, leader"} {
		if !strings.Contains(text, want) {
			t.Errorf("leases output lacks %q:\n%s", want, text)
		}
	}
}
