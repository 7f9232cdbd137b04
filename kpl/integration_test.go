package kpl_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// readUser is a user record read back from the stream.
type readUser struct {
	PartitionKey string
	Data         string
	ShardID      string
	Seq          *big.Int
	Sub          uint64
}

// readAll reads every record of every shard of a stream (closed shards
// included) from TRIM_HORIZON, deaggregating, each shard in order.
func readAll(t *testing.T, ctx context.Context, c *kinesis.Client, stream string) (users []readUser, shards []types.Shard) {
	t.Helper()
	var next *string
	for {
		in := &kinesis.ListShardsInput{NextToken: next}
		if next == nil {
			in.StreamName = aws.String(stream)
		}
		out, err := c.ListShards(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		shards = append(shards, out.Shards...)
		if next = out.NextToken; next == nil {
			break
		}
	}
	for _, sh := range shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				seq, _ := new(big.Int).SetString(aws.ToString(r.SequenceNumber), 10)
				if recs, ok := aggregation.Decode(r.Data); ok {
					for _, u := range recs {
						users = append(users, readUser{u.PartitionKey, string(u.Data), aws.ToString(sh.ShardId), seq, u.SubSequenceNumber})
					}
				} else {
					users = append(users, readUser{aws.ToString(r.PartitionKey), string(r.Data), aws.ToString(sh.ShardId), seq, 0})
				}
			}
			if len(out.Records) == 0 && (out.MillisBehindLatest == nil || *out.MillisBehindLatest == 0) {
				break // caught up (an open shard) or nil iterator (closed)
			}
			iter = out.NextShardIterator
		}
	}
	return users, shards
}

// payload is a 100-byte record body that names the record.
func payload(i int) []byte {
	b := make([]byte, 100)
	copy(b, fmt.Sprintf("rec-%08d|", i))
	for j := 13; j < len(b); j++ {
		b[j] = 'x'
	}
	return b
}

func recordID(data string) string { return data[:12] }

// putAll puts n records, keyOf(i) as key, and waits for all callbacks.
func putAll(t *testing.T, ctx context.Context, p *kpl.Producer, n int, keyOf func(int) string) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	wg.Add(n)
	for i := 0; i < n; i++ {
		err := p.Put(ctx, kpl.Record{PartitionKey: keyOf(i), Data: payload(i)}, func(r kpl.Result) {
			defer wg.Done()
			if r.Err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, r.Err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d records failed, first: %v", n, firstErr.Load())
	}
}

// checkExactlyOnce checks that every record 0..n-1 was read exactly once
// and, when ranges is set, on the shard whose range holds its hash key.
func checkExactlyOnce(t *testing.T, users []readUser, n int, keyOf func(int) string, shards []types.Shard, checkShard bool) {
	t.Helper()
	count := map[string]int{}
	for _, u := range users {
		count[recordID(u.Data)]++
		if !checkShard {
			continue
		}
		k := hashkey.FromPartitionKey(u.PartitionKey)
		for _, sh := range shards {
			rng, err := hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
			if err != nil {
				t.Fatal(err)
			}
			if rng.Contains(k) && aws.ToString(sh.ShardId) != u.ShardID {
				t.Fatalf("%s with key %s read from %s, its hash key maps to %s", recordID(u.Data), u.PartitionKey, u.ShardID, aws.ToString(sh.ShardId))
			}
		}
	}
	missing, dup := 0, 0
	for i := 0; i < n; i++ {
		switch c := count[fmt.Sprintf("rec-%08d", i)]; {
		case c == 0:
			missing++
		case c > 1:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(users) != n {
		t.Fatalf("%d user records read for %d put: %d missing, %d duplicated", len(users), n, missing, dup)
	}
}

func newProducer(t *testing.T, client kpl.KinesisAPI, stream string, cfg kpl.Config) *kpl.Producer {
	t.Helper()
	cfg.Stream, cfg.Kinesis = stream, client
	p, err := kpl.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return p
}

// TestIntegrationExactlyOnceThroughLimits puts 20,000 records of 100 B with
// random keys into a 2-shard stream through the proxy with AWS's limits, and
// reads every one back exactly once, on the shard its hash key maps to.
func TestIntegrationExactlyOnceThroughLimits(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{})
	direct := testenv.KinesisClient(t)
	stream := testenv.CreateStream(t, direct, 2)
	// Exactly once holds as long as no call times out after the emulator
	// stored its records (a retry then writes them again: at least once).
	// kinesis-mock on a loaded 2-core machine can take longer than the
	// default 6 s per call, so calls and records get room here.
	p := newProducer(t, testenv.KinesisClientAt(t, px.URL()), stream, kpl.Config{
		RequestTimeout: 60 * time.Second,
		RecordTTL:      100 * time.Second,
	})

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const n = 20000
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
	}
	keyOf := func(i int) string { return keys[i] }
	putAll(t, ctx, p, n, keyOf)

	users, shards := readAll(t, ctx, direct, stream)
	checkExactlyOnce(t, users, n, keyOf, shards, true)
	st := px.Stats()
	t.Logf("proxy: %d Kinesis records for %d user records, %d PutRecords, %d throttled entries", st.Records, st.UserRecords, st.PutRequests, st.Throttled)
	if st.UserRecords != n || st.Records*10 > n {
		t.Fatalf("proxy counted %d user records in %d Kinesis records", st.UserRecords, st.Records)
	}
}

// TestIntegrationPreserveOrderWithInternalFailures puts records of 50 keys
// with PreserveOrder through a proxy failing 5 % of entries, and checks that
// each key's records were written in the order they were put.
func TestIntegrationPreserveOrderWithInternalFailures(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{Seed: 7, Kinesis: proxy.KinesisFaults{InternalFailure: 0.05}})
	direct := testenv.KinesisClient(t)
	stream := testenv.CreateStream(t, direct, 2)
	p := newProducer(t, testenv.KinesisClientAt(t, px.URL()), stream, kpl.Config{
		PreserveOrder: true, AggregationMaxSize: 2000, RecordMaxBufferedTime: 20 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 4000
	keyOf := func(i int) string { return fmt.Sprintf("key-%02d", i%50) }
	putAll(t, ctx, p, n, keyOf)
	if px.Stats().Faults == 0 {
		t.Fatal("no faults were injected")
	}

	users, shards := readAll(t, ctx, direct, stream)
	checkExactlyOnce(t, users, n, keyOf, shards, true)
	// users are in shard order already (sequence number, sub-sequence).
	last := map[string]string{}
	for _, u := range users {
		id := recordID(u.Data)
		if prev, ok := last[u.PartitionKey]; ok && prev > id {
			t.Fatalf("key %s: %s written after %s", u.PartitionKey, id, prev)
		}
		last[u.PartitionKey] = id
	}
	t.Logf("proxy: %+v", px.Stats())
}

// TestIntegrationSplitDuringProduction splits the stream's only shard while
// records are being put, and checks that none is lost.
func TestIntegrationSplitDuringProduction(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{})
	direct := testenv.KinesisClient(t)
	stream := testenv.CreateStream(t, direct, 1)
	p := newProducer(t, testenv.KinesisClientAt(t, px.URL()), stream, kpl.Config{RecordMaxBufferedTime: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const n = 6000
	keyOf := func(i int) string { return fmt.Sprintf("user-%d", i%500) }
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	wg.Add(n)
	split := make(chan error, 1)
	for i := 0; i < n; i++ {
		if i == n/3 {
			go func() { split <- splitOnlyShard(ctx, direct, stream) }()
		}
		if i%200 == 0 {
			time.Sleep(10 * time.Millisecond) // spread production over the split
		}
		err := p.Put(ctx, kpl.Record{PartitionKey: keyOf(i), Data: payload(i)}, func(r kpl.Result) {
			defer wg.Done()
			if r.Err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, r.Err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-split; err != nil {
		t.Fatal(err)
	}
	// Put some more once the children are open, then flush.
	for i := 0; i < 10; i++ {
		if _, err := p.PutSync(ctx, kpl.Record{PartitionKey: keyOf(i), Data: payload(n + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d records failed, first: %v", failed.Load(), firstErr.Load())
	}
	users, shards := readAll(t, ctx, direct, stream)
	if len(shards) != 3 {
		t.Fatalf("%d shards after the split, want 3", len(shards))
	}
	checkExactlyOnce(t, users, n+10, func(i int) string { return keyOf(i % n) }, shards, false)
	perShard := map[string]int{}
	for _, u := range users {
		perShard[u.ShardID]++
	}
	t.Logf("user records per shard: %v", perShard)
}

func splitOnlyShard(ctx context.Context, c *kinesis.Client, stream string) error {
	out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return err
	}
	if len(out.Shards) != 1 {
		return errors.New("want one shard")
	}
	sh := out.Shards[0]
	rng, err := hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
	if err != nil {
		return err
	}
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: sh.ShardId,
		NewStartingHashKey: aws.String(hashkey.Mid(rng.Start, rng.End).String()),
	}); err != nil {
		return err
	}
	return testenv.WaitStreamActive(ctx, c, stream)
}

// TestIntegrationWholeRequestFaults puts records through a proxy answering
// some requests with 500 and 503 and cutting some connections after the
// request took effect: every record is written (at least once: a cut
// connection hides a success, so the retry writes a duplicate).
func TestIntegrationWholeRequestFaults(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{Seed: 11, Kinesis: proxy.KinesisFaults{
		ServerError: 0.1, Unavailable: 0.1, CloseConnection: 0.05, Operations: []string{"PutRecords"},
	}})
	direct := testenv.KinesisClient(t)
	stream := testenv.CreateStream(t, direct, 2)
	p := newProducer(t, testenv.KinesisClientAt(t, px.URL()), stream, kpl.Config{
		AggregationMaxSize: 1000, CollectionMaxCount: 10, RecordMaxBufferedTime: 10 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 3000
	keyOf := func(i int) string { return fmt.Sprintf("user-%d", i%300) }
	putAll(t, ctx, p, n, keyOf)
	if px.Stats().Faults == 0 {
		t.Fatal("no faults were injected")
	}
	users, _ := readAll(t, ctx, direct, stream)
	count := map[string]int{}
	for _, u := range users {
		count[recordID(u.Data)]++
	}
	dups := 0
	for i := 0; i < n; i++ {
		switch c := count[fmt.Sprintf("rec-%08d", i)]; {
		case c == 0:
			t.Fatalf("rec-%08d lost", i)
		case c > 1:
			dups++
		}
	}
	t.Logf("%d user records read for %d put (%d duplicated by cut connections); proxy: %+v", len(users), n, dups, px.Stats())
}
