package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/spf13/cobra"

	"github.com/kinesisgo/kinesis/lease"
)

// fleetInfo is what the coordinator state and worker metrics tables next
// to a lease table say of the workers: the leader and every worker's
// heartbeat and load.
type fleetInfo struct {
	// Leader is the worker holding the leader item; empty when none does.
	Leader string `json:"leader"`
	// LeaderCounter is the leader item's fencing counter: it moves at
	// every renewal of a live leader.
	LeaderCounter int64        `json:"leaderCounter"`
	Workers       []workerInfo `json:"workers"`
	// Tables is false when the coordinator state and worker metrics
	// tables do not exist (no worker of this version has started).
	Tables bool `json:"tables"`
}

type workerInfo struct {
	ID        string `json:"id"`
	Heartbeat int64  `json:"heartbeat"`
	// LastHeartbeat is the worker's clock at its last heartbeat; the age
	// shown compares it with this machine's clock.
	LastHeartbeat  time.Time `json:"lastHeartbeat"`
	Leases         int       `json:"leases"`
	ThroughputKBps float64   `json:"throughputKBps"`
	MaxLeases      int       `json:"maxLeases,omitempty"`
	Leaving        bool      `json:"leaving,omitempty"`
	// Live is whether the leader counts the worker as live.
	Live bool `json:"live"`
}

// readFleet reads the leader item and the worker metrics of a lease table.
func (a *app) readFleet(ctx context.Context, table string) (fleetInfo, error) {
	_, store, err := a.leaseStore(ctx, table)
	if err != nil {
		return fleetInfo{}, err
	}
	var f fleetInfo
	st, err := store.Leader(ctx)
	var nf *ddbtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return f, nil
	case err != nil:
		return fleetInfo{}, fail(exitFailure, err, "read the leader item of table %q", table+lease.CoordinatorStateSuffix)
	}
	f.Tables = true
	f.Leader, f.LeaderCounter = st.Owner, st.Counter
	live := map[string]bool{}
	for _, id := range st.Live {
		live[id] = true
	}
	ws, err := store.Workers(ctx)
	if errors.As(err, &nf) {
		return f, nil
	}
	if err != nil {
		return fleetInfo{}, fail(exitFailure, err, "read table %q", table+lease.WorkerMetricsSuffix)
	}
	for _, w := range ws {
		f.Workers = append(f.Workers, workerInfo{
			ID: w.ID, Heartbeat: w.Heartbeat, LastHeartbeat: w.Updated, Leases: w.Leases,
			ThroughputKBps: w.ThroughputKBps, MaxLeases: w.MaxLeases, Leaving: w.Leaving, Live: live[w.ID],
		})
	}
	return f, nil
}

// printFleet prints the leader and the workers' heartbeats.
func printFleet(w io.Writer, f fleetInfo, now time.Time) error {
	if !f.Tables {
		_, err := fmt.Fprintf(w, "no coordinator state: no worker that elects a leader has started on this table\n")
		return err
	}
	leader := f.Leader
	if leader == "" {
		leader = "none (released; the next worker to look takes it)"
	}
	if _, err := fmt.Fprintf(w, "leader: %s (counter %d)\n", leader, f.LeaderCounter); err != nil {
		return err
	}
	if len(f.Workers) == 0 {
		_, err := fmt.Fprintln(w, "no worker heartbeats")
		return err
	}
	t := newTable(w, "WORKER", "LAST HEARTBEAT", "HEARTBEATS", "LEASES", "KIB/S", "CAP", "STATE")
	for _, wk := range f.Workers {
		state := "live"
		switch {
		case wk.Leaving:
			state = "leaving"
		case !wk.Live:
			state = "not live (as the leader last judged)"
		}
		if wk.ID == f.Leader {
			state += ", leader"
		}
		capShown := "-"
		if wk.MaxLeases > 0 {
			capShown = strconv.Itoa(wk.MaxLeases)
		}
		age := now.Sub(wk.LastHeartbeat).Round(100 * time.Millisecond)
		t.row(wk.ID, age.String()+" ago", strconv.FormatInt(wk.Heartbeat, 10), strconv.Itoa(wk.Leases),
			strconv.FormatFloat(wk.ThroughputKBps, 'f', 1, 64), capShown, state)
	}
	return t.flush()
}

func (a *app) leasesWorkersCommand() *cobra.Command {
	var table string
	cmd := &cobra.Command{
		Use:   "workers APP",
		Short: "Show an application's leader and its workers' heartbeats and loads",
		Long: `Show the coordinator state of a kcl application: the worker that leads
(it scans the lease table and assigns the leases) and its counter, and for
each worker of the worker metrics table its last heartbeat (its age by this
machine's clock against the worker's), how many heartbeats it wrote, the
leases it holds, their summed read rate (KiB/s), its cap
(MaxLeasesForWorker) and whether the leader counts it live, or it is
leaving (shutting down).`,
		Args: args("APP"),
	}
	cmd.Flags().StringVar(&table, "table", "", "lease table name (default: APP, as kcl names it)")
	cmd.RunE = a.runE("DYNAMODB", func(cmd *cobra.Command, argv []string) error {
		if table == "" {
			table = argv[0]
		}
		f, err := a.readFleet(cmd.Context(), table)
		if err != nil {
			return err
		}
		return a.emit(f, func(w io.Writer) error { return printFleet(w, f, time.Now()) })
	})
	return cmd
}
