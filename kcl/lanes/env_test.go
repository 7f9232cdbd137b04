package lanes_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kcl/lanes"
	"github.com/kinesisgo/kinesis/kpl"
	"github.com/kinesisgo/kinesis/lease"
)

// env is a stream behind the limits proxy (AWS's per-shard limits, and
// ListShards and retention as AWS's API reference has them) and a lease
// table name on the DynamoDB emulator.
type env struct {
	t       *testing.T
	kinesis *kinesis.Client // through the proxy
	kinURL  string
	ddbURL  string
	stream  string
	table   string
}

func newEnv(t *testing.T, shards int) *env {
	ep := testenv.Require(t)
	px := proxy.StartForTest(t, proxy.Config{ShardLifecycle: true})
	client := testenv.KinesisClientAt(t, px.URL())
	stream := testenv.CreateStream(t, client, shards)
	_, table := testenv.NewTableName(t)
	return &env{t: t, kinesis: client, kinURL: px.URL(), ddbURL: ep.DynamoDB, stream: stream, table: table}
}

// config is a worker's Config for the env, with processors from f.
func (e *env) config(id string, f *lanes.Factory) kcl.Config {
	return kcl.Config{
		Stream: e.stream, App: "lanes", LeaseTable: e.table, WorkerID: id,
		NewProcessor:    f.NewProcessor,
		InitialPosition: checkpoint.TrimHorizon,
		Kinesis:         testenv.KinesisClientAt(e.t, e.kinURL),
		DynamoDB:        testenv.DynamoDBClientAt(e.t, e.ddbURL),
		Lease:           kcl.LeaseConfig{FailoverTime: 3 * time.Second, TakeInterval: 500 * time.Millisecond},
		Retrieval:       kcl.RetrievalConfig{IdleWait: 200 * time.Millisecond},
		Logger:          zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)),
	}
}

// run runs a worker until the returned stop is called (a graceful
// shutdown), or the test ends.
func (e *env) run(cfg kcl.Config) (stop func()) {
	e.t.Helper()
	return runWorker(e.t, cfg)
}

// runWorker runs a worker of cfg until the returned stop is called (a
// graceful shutdown, which must end within 30 s), or the test ends.
func runWorker(t *testing.T, cfg kcl.Config) (stop func()) {
	t.Helper()
	w, err := kcl.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// put writes perKey records for each of keys partition keys, aggregated
// by kpl, the records of a key in order; the data of record n of key k is
// "k#n". It returns the number written.
func (e *env) put(keys, perKey int, data func(key string, n int) string) int {
	e.t.Helper()
	p, err := kpl.New(kpl.Config{Stream: e.stream, Kinesis: e.kinesis})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var failed error
	for n := range perKey {
		for k := range keys {
			key := fmt.Sprintf("key-%03d", k)
			d := key + "#" + strconv.Itoa(n)
			if data != nil {
				d = data(key, n)
			}
			if err := p.Put(ctx, kpl.Record{PartitionKey: key, Data: []byte(d)}, func(r kpl.Result) {
				if r.Err != nil {
					mu.Lock()
					failed = errors.Join(failed, r.Err)
					mu.Unlock()
				}
			}); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	if err := p.Close(ctx); err != nil {
		e.t.Fatal(err)
	}
	if failed != nil {
		e.t.Fatal(failed)
	}
	return keys * perKey
}

// lease reads a shard's lease; false when it is not there (yet) or the
// read failed.
func (e *env) lease(shard string) (lease.Lease, bool) {
	e.t.Helper()
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: testenv.DynamoDBClientAt(e.t, e.ddbURL), Table: e.table})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := store.Get(ctx, shard)
	var missing *ddbtypes.ResourceNotFoundException
	if err != nil && !errors.Is(err, lease.ErrNotFound) && !errors.As(err, &missing) {
		e.t.Logf("reading the lease of %s: %v", shard, err)
	}
	return l, err == nil
}

// checkpointOf returns the checkpoint of a shard's lease, the zero value
// when the lease cannot be read.
func (e *env) checkpointOf(shard string) checkpoint.SequenceNumber {
	l, _ := e.lease(shard)
	return l.CheckpointSequence()
}

// seen is a record as a handler saw it.
type seen struct {
	key string
	n   int
	pos checkpoint.SequenceNumber
}

// parse reads a record made by env.put.
func parse(t testing.TB, r kcl.Record) seen {
	key, nStr, ok := strings.Cut(string(r.Data), "#")
	n, err := strconv.Atoi(nStr)
	if !ok || err != nil {
		t.Errorf("record %s/%d: unexpected data %q", r.SequenceNumber, r.SubSequenceNumber, r.Data)
	}
	return seen{key: key, n: n, pos: checkpoint.SequenceNumber{Sequence: r.SequenceNumber, SubSequence: r.SubSequenceNumber}}
}
