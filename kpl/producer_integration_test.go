package kpl_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
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

// TestIntegrationNonCanonicalHashKeyRejectedAtPut: Kinesis refuses a whole
// PutRecords request when one entry's ExplicitHashKey has leading zeros, so
// Put must refuse such a record and the records sharing its request must
// still be written.
func TestIntegrationNonCanonicalHashKeyRejectedAtPut(t *testing.T) {
	client, stream := testenv.NewStream(t, 1)
	p := newProducer(t, client, stream, kpl.Config{DisableAggregation: true, RecordMaxBufferedTime: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := make(chan kpl.Result, 1)
	if err := p.Put(ctx, kpl.Record{PartitionKey: "k", Data: []byte("good")}, func(r kpl.Result) { good <- r }); err != nil {
		t.Fatal(err)
	}
	bad := make(chan kpl.Result, 1)
	err := p.Put(ctx, kpl.Record{PartitionKey: "k", ExplicitHashKey: "007", Data: []byte("bad")}, func(r kpl.Result) { bad <- r })
	if !errors.Is(err, kpl.ErrInvalidRecord) {
		t.Errorf("Put with ExplicitHashKey 007: err = %v, want ErrInvalidRecord", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-good; r.Err != nil {
		t.Fatalf("valid record sharing a request with the bad one failed: %v", r.Err)
	}
}

// TestIntegrationPartitionKeyCountedInUTF16Units: Kinesis refuses a whole
// PutRecords request when one entry's partition key is over 256 UTF-16 code
// units (256 characters outside the Basic Multilingual Plane are 512), so
// Put must refuse such a key and the records sharing its request must still
// be written.
func TestIntegrationPartitionKeyCountedInUTF16Units(t *testing.T) {
	client, stream := testenv.NewStream(t, 1)
	p := newProducer(t, client, stream, kpl.Config{DisableAggregation: true, RecordMaxBufferedTime: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := make(chan kpl.Result, 2)
	for _, pk := range []string{"k", strings.Repeat("😀", 128)} {
		if err := p.Put(ctx, kpl.Record{PartitionKey: pk, Data: []byte("good")}, func(r kpl.Result) { good <- r }); err != nil {
			t.Fatal(err)
		}
	}
	err := p.Put(ctx, kpl.Record{PartitionKey: strings.Repeat("😀", 256), Data: []byte("bad")}, func(kpl.Result) {})
	if !errors.Is(err, kpl.ErrInvalidRecord) {
		t.Errorf("Put with 256 astral characters: err = %v, want ErrInvalidRecord", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := <-good; r.Err != nil {
			t.Fatalf("valid record sharing a request with the bad one failed: %v", r.Err)
		}
	}
}
