package main

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/kinesisgo/kinesis/lease"
)

// seen is one user record as a processor saw it in one tenure of its lease.
type seen struct {
	tenure int
	shard  string
	data   string
}

// tenures records, per tenure (one processor per shard and
// lease taken), when it started and what it was given.
type tenures struct {
	mu      sync.Mutex
	started []time.Time // by tenure number
	from    []string    // the checkpoint each tenure started from
	all     []seen
}

// processor is a kcl processor for one tenure of one shard.
func (s *tenures) processor(shard string) kcl.RecordProcessor {
	s.mu.Lock()
	id := len(s.started)
	s.started = append(s.started, time.Time{})
	s.from = append(s.from, "")
	s.mu.Unlock()
	return &tenureProcessor{s: s, id: id}
}

type tenureProcessor struct {
	kcl.ProcessorFunc
	s  *tenures
	id int
}

func (p *tenureProcessor) Initialize(_ context.Context, in *kcl.InitializeInput) error {
	p.s.mu.Lock()
	p.s.started[p.id] = time.Now()
	p.s.from[p.id] = formatCheckpoint(in.Checkpoint, in.CheckpointSubSequenceNumber)
	p.s.mu.Unlock()
	return nil
}

func (p *tenureProcessor) ProcessRecords(ctx context.Context, b *kcl.Batch) error {
	p.s.mu.Lock()
	for _, r := range b.Records {
		p.s.all = append(p.s.all, seen{tenure: p.id, shard: b.ShardID, data: string(r.Data)})
	}
	p.s.mu.Unlock()
	return b.Checkpoint(ctx)
}

func (p *tenureProcessor) ShutdownRequested(ctx context.Context, in *kcl.ShutdownRequestedInput) error {
	return in.Checkpointer.CheckpointProcessed(ctx)
}

// since returns, per shard, the records delivered by tenures that started
// after t, in delivery order, and the records of the first of them that
// started from the checkpoint from[shard].
func (s *tenures) since(t time.Time, from map[string]string) (all, first map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, first = map[string][]string{}, map[string][]string{}
	firstTenure := map[string]int{}
	for _, d := range s.all {
		if st := s.started[d.tenure]; st.IsZero() || !st.After(t) {
			continue
		}
		all[d.shard] = append(all[d.shard], d.data)
		if s.from[d.tenure] != from[d.shard] {
			continue
		}
		f, ok := firstTenure[d.shard]
		if !ok {
			firstTenure[d.shard], f = d.tenure, d.tenure
		}
		if f == d.tenure {
			first[d.shard] = append(first[d.shard], d.data)
		}
	}
	return all, first
}

// delivered reports whether every record of want was delivered at least
// once, by any tenure.
func (s *tenures) delivered(want map[string][]string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := map[string]bool{}
	for _, d := range s.all {
		got[d.data] = true
	}
	for _, recs := range want {
		for _, r := range recs {
			if !got[r] {
				return false
			}
		}
	}
	return true
}

// shardKeys returns an explicit hash key inside each of n equal shards.
func shardKeys(n int) []string {
	keys := make([]string, n)
	width := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(int64(n)))
	for i := range n {
		k := new(big.Int).Mul(width, big.NewInt(int64(i)))
		keys[i] = k.Add(k, big.NewInt(12345)).String()
	}
	return keys
}

// writeRecords puts perShard plain records "<phase>-s<i>-<n>" into each
// shard (by explicit hash key) and returns them per shard ID, in order; with
// aggregateLast, each shard's last record is a KPL aggregate of three user
// records.
func writeRecords(t *testing.T, kc *kinesis.Client, stream, phase string, shards, perShard int, aggregateLast bool) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string][]string{}
	keys := shardKeys(shards)
	for n := range perShard {
		for i, key := range keys {
			id := fmt.Sprintf("shardId-%012d", i)
			var data []byte
			var users []string
			if aggregateLast && n == perShard-1 {
				var e aggregation.Encoder
				for u := range 3 {
					d := fmt.Sprintf("%s-s%d-%d.%d", phase, i, n, u)
					e.Add(aggregation.Record{PartitionKey: "k", ExplicitHashKey: key, Data: []byte(d)})
					users = append(users, d)
				}
				data = e.Encode()
			} else {
				d := fmt.Sprintf("%s-s%d-%d", phase, i, n)
				data, users = []byte(d), []string{d}
			}
			r, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"),
				ExplicitHashKey: aws.String(key), Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(r.ShardId) != id {
				t.Fatalf("record for %s went to %s", id, aws.ToString(r.ShardId))
			}
			out[id] = append(out[id], users...)
		}
	}
	return out
}

// pastMillis waits until the clock has passed t by a few milliseconds, so
// that records written afterwards arrive after t even at the millisecond
// precision of arrival times.
func pastMillis(t *testing.T, at time.Time) {
	t.Helper()
	wait.For(t, time.Second, "the clock to pass the reset time", func() bool { return time.Since(at) > 20*time.Millisecond })
}

// With three workers running, leases reset --to TIME makes every shard
// resume at its first record at or after TIME, checked record by record,
// without restarting a worker; lag then needs no --stream.
func TestLeasesResetToTimeWithWorkers(t *testing.T) {
	t.Parallel()
	ep := testenv.Require(t)
	kc, stream := testenv.NewStream(t, 3)
	_, table := testenv.NewTableName(t)
	s := &tenures{}
	for i := range 3 {
		w, err := kcl.New(kcl.Config{
			Stream: stream, App: "app", LeaseTable: table, WorkerID: fmt.Sprintf("worker-%d", i),
			NewProcessor:       s.processor,
			InitialPosition:    checkpoint.TrimHorizon,
			Kinesis:            testenv.KinesisClientAt(t, ep.Kinesis),
			DynamoDB:           testenv.DynamoDBClientAt(t, ep.DynamoDB),
			Lease:              kcl.LeaseConfig{FailoverTime: 3 * time.Second, TakeInterval: 600 * time.Millisecond},
			Retrieval:          kcl.RetrievalConfig{IdleWait: 200 * time.Millisecond},
			ParentPollInterval: 500 * time.Millisecond,
			ShardSyncInterval:  2 * time.Second,
			Logger:             zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(fmt.Sprintf("w%d", i)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("worker %d: %v", i, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("worker %d did not stop within 30s", i)
			}
		})
	}

	before := writeRecords(t, kc, stream, "before", 3, 8, true)
	wait.For(t, time.Minute, "the records before the reset time to be delivered", func() bool { return s.delivered(before) })
	at := time.Now()
	pastMillis(t, at)
	after := writeRecords(t, kc, stream, "after", 3, 6, false)
	wait.For(t, time.Minute, "the records after the reset time to be delivered", func() bool { return s.delivered(after) })
	// Every shard checkpointed past the reset time: the reset moves it back.
	store := testStore(t, table)
	wait.For(t, 30*time.Second, "checkpoints at the last records", func() bool {
		ls, err := store.List(context.Background())
		return err == nil && len(ls) == 3 && !slices.ContainsFunc(ls, func(l lease.Lease) bool { return !isSequenceNumber(l.Checkpoint) })
	})

	// The plan: each shard's checkpoint becomes the aggregate written last
	// before the time, all of its user records processed.
	plan := decode[[]resetStep](t, mustRun(t, "leases", "reset", table, "--stream", stream, "--to", at.Format(time.RFC3339Nano), "--dry-run", "--json"))
	if len(plan) != 3 {
		t.Fatalf("plan: %+v", plan)
	}
	for _, st := range plan {
		if st.Action != "reset" || !strings.HasSuffix(st.New, "/2") || st.ResumesAt == "" || st.Current == st.New {
			t.Errorf("plan step %+v: want a reset to an aggregate's last user record (/2)", st)
		}
	}
	ls, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Owner == "" {
			t.Errorf("dry run released lease %s", l.Key)
		}
	}

	resetStart := time.Now()
	defer func() { // what the table and the processors saw, to follow a shard that did not resume
		if !t.Failed() {
			return
		}
		ls, err := store.List(context.Background())
		for _, l := range ls {
			t.Logf("lease at the end: %+v", l)
		}
		st, lerr := store.Leader(context.Background())
		t.Logf("leader item at the end: %+v (list: %v, leader: %v)", st, err, lerr)
		s.mu.Lock()
		defer s.mu.Unlock()
		for i := range s.started {
			t.Logf("tenure %d started %s from %s", i, s.started[i].Format("15:04:05.000"), s.from[i])
		}
		t.Logf("reset at %s", resetStart.Format("15:04:05.000"))
	}()
	// A dry run records nothing, the stream included.
	wantExit(t, kctl(t, "leases", "reset", table, "--to", at.Format(time.RFC3339Nano)), exitUsage, "pass --stream once")
	mustRun(t, "leases", "reset", table, "--stream", stream, "--to", at.Format(time.RFC3339Nano))
	from := map[string]string{}
	for _, st := range plan {
		from[st.Shard] = st.New
	}
	more := writeRecords(t, kc, stream, "later", 3, 4, false)
	want := map[string][]string{}
	for id := range after {
		want[id] = append(slices.Clone(after[id]), more[id]...)
	}
	wait.For(t, time.Minute, "every shard to process again from the reset time", func() bool {
		all, _ := s.since(resetStart, from)
		for id, recs := range want {
			if !containsAll(all[id], recs) {
				return false
			}
		}
		return true
	})
	all, first := s.since(resetStart, from)
	for id, recs := range want {
		f := first[id]
		// The first tenure from the reset checkpoint starts exactly at
		// the first record after the time and goes on in order.
		if len(f) == 0 || !slices.Equal(f, recs[:min(len(f), len(recs))]) {
			t.Errorf("shard %s: first tenure from the reset checkpoint delivered %v, want a prefix of %v", id, f, recs)
		}
		for _, d := range all[id] {
			if strings.HasPrefix(d, "before-") {
				t.Errorf("shard %s: record %s from before the reset time delivered again", id, d)
			}
		}
	}

	// lag needs no --stream: the table records it.
	lags := decode[[]lagInfo](t, mustRun(t, "lag", table, "--json"))
	if len(lags) != 3 {
		t.Errorf("lag: %+v", lags)
	}
}

func containsAll(got, want []string) bool {
	set := make(map[string]bool, len(got))
	for _, g := range got {
		set[g] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// testStore is a lease store over table on the test's DynamoDB.
func testStore(t *testing.T, table string) *lease.DynamoDBStore {
	t.Helper()
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: testenv.DynamoDBClient(t), Table: table})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// Reset across a split, without workers: a shard closed before the time is
// finished, its children (opened after it) restart at TRIM_HORIZON, a time
// before the split puts the parent back at the record before it (and
// recreates its deleted lease), and --to SEQ sets one shard's checkpoint.
func TestLeasesResetLineage(t *testing.T) {
	t.Parallel()
	kc, stream := testenv.NewStream(t, 1)
	_, table := testenv.NewLeaseTable(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := writeRecords(t, kc, stream, "early", 1, 3, false)
	t0 := time.Now()
	pastMillis(t, t0)
	writeRecords(t, kc, stream, "mid", 1, 2, false)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String(next(hashkey.Mid(hashkey.Key{}, hashkey.Max)).String())}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitStreamActive(ctx, kc, stream); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	pastMillis(t, t1)
	if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"),
		ExplicitHashKey: aws.String("1"), Data: []byte("child")}); err != nil {
		t.Fatal(err)
	}

	store := testStore(t, table)
	for _, l := range []lease.Lease{
		{Key: "shardId-000000000000", Owner: "w1", Counter: 4, Checkpoint: string(checkpoint.ShardEnd)},
		{Key: "shardId-000000000001", Owner: "w1", Counter: 2, Checkpoint: string(checkpoint.Latest), ParentShardIDs: []string{"shardId-000000000000"}},
		{Key: "shardId-000000000002", Owner: "w2", Counter: 2, Checkpoint: string(checkpoint.TrimHorizon), ParentShardIDs: []string{"shardId-000000000000"}},
	} {
		if _, err := store.Create(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	steps := func(r result) map[string]resetStep {
		out := map[string]resetStep{}
		for _, s := range decode[[]resetStep](t, r) {
			out[s.Shard] = s
		}
		return out
	}
	p := steps(mustRun(t, "leases", "reset", table, "--stream", stream, "--to", t1.Format(time.RFC3339Nano), "--json"))
	if s := p["shardId-000000000000"]; s.New != string(checkpoint.ShardEnd) {
		t.Errorf("parent closed before the time: %+v, want SHARD_END", s)
	}
	for _, id := range []string{"shardId-000000000001", "shardId-000000000002"} {
		if s := p[id]; s.New != string(checkpoint.TrimHorizon) || s.Action != "reset" {
			t.Errorf("child opened after the time: %+v, want TRIM_HORIZON", s)
		}
	}
	l1, err := store.Get(ctx, "shardId-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if l1.Owner != "" || l1.Counter != 3 || l1.Checkpoint != string(checkpoint.TrimHorizon) || !l1.LatestTimestamp.IsZero() {
		t.Errorf("child lease after the reset: %+v, want unowned, counter 3, TRIM_HORIZON", l1)
	}

	// Before the split: the parent's lease, deleted, is created again at
	// the record before t0.
	parent, err := store.Get(ctx, "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, parent); err != nil {
		t.Fatal(err)
	}
	p = steps(mustRun(t, "leases", "reset", table, "--to", t0.Format(time.RFC3339Nano), "--json"))
	seqs := readSeqs(t, kc, stream, "shardId-000000000000")
	if s := p["shardId-000000000000"]; s.Action != "create" || s.New != seqs[len(first["shardId-000000000000"])-1] || s.ResumesAt != seqs[len(first["shardId-000000000000"])] {
		t.Errorf("parent before the split: %+v, want created at %s resuming at %s", s, seqs[2], seqs[3])
	}
	created, err := store.Get(ctx, "shardId-000000000000")
	if err != nil || created.Checkpoint != seqs[2] {
		t.Errorf("recreated parent lease: %+v, %v", created, err)
	}

	// One shard to a sequence number.
	mustRun(t, "leases", "reset", table, "--to", seqs[0], "--shard", "0")
	if l, err := store.Get(ctx, "shardId-000000000000"); err != nil || l.Checkpoint != seqs[0] {
		t.Errorf("after --to %s: %+v, %v", seqs[0], l, err)
	}
	wantExit(t, kctl(t, "leases", "reset", table, "--to", seqs[0]), exitUsage, "exactly one --shard")
	wantExit(t, kctl(t, "leases", "reset", table, "--to", "yesterday"), exitUsage, "RFC 3339")
	wantExit(t, kctl(t, "leases", "reset", table, "--to", time.Now().Add(time.Hour).Format(time.RFC3339)), exitUsage, "future")
}

// readSeqs returns the sequence numbers of a shard's records, in order.
func readSeqs(t *testing.T, kc *kinesis.Client, stream, shard string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard),
		ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []string
	iter := it.ShardIterator
	for iter != nil {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			break
		}
		iter = out.NextShardIterator
	}
	return seqs
}
