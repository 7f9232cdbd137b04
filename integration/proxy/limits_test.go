package proxy

import (
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1e9, 0)} }
func (l *limiter) writeN(key string, n, size int) (ok int) {
	for range n {
		if l.write(key, size) {
			ok++
		}
	}
	return ok
}

func TestWriteRecordLimit(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(Limits{}, c.now)
	if got := l.writeN("s/a", 1500, 10); got != 1000 {
		t.Fatalf("burst: %d accepted, want 1000 (one second of credit)", got)
	}
	c.add(250 * time.Millisecond)
	if got := l.writeN("s/a", 1000, 10); got != 250 {
		t.Fatalf("after 250ms: %d accepted, want 250", got)
	}
	if got := l.writeN("s/b", 1000, 10); got != 1000 {
		t.Fatalf("another shard: %d accepted, want its own 1000", got)
	}
	c.add(time.Hour)
	if got := l.writeN("s/a", 2000, 10); got != 1000 {
		t.Fatalf("after an idle hour: %d accepted, want 1000 (credit capped at one second)", got)
	}
}

func TestWriteByteLimit(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(Limits{}, c.now)
	if got := l.writeN("s/a", 100, 100<<10); got != 10 {
		t.Fatalf("100 KiB records: %d accepted, want 10 (1 MiB)", got)
	}
	c.add(500 * time.Millisecond)
	if got := l.writeN("s/a", 100, 100<<10); got != 5 {
		t.Fatalf("after 500ms: %d accepted, want 5", got)
	}
	// A record larger than the bucket passes when the bucket is full and
	// leaves a debt.
	c.add(time.Second)
	if !l.write("s/a", 3<<20) {
		t.Fatal("3 MiB record refused by a full bucket")
	}
	c.add(time.Second)
	if l.write("s/a", 1) {
		t.Fatal("accepted while 1 MiB in debt")
	}
	c.add(1500 * time.Millisecond)
	if !l.write("s/a", 1) {
		t.Fatal("refused after the debt was paid")
	}
}

func TestReadLimit(t *testing.T) {
	c := newFakeClock()
	l := newLimiter(Limits{ReadCallsPerSecond: 5, ReadBytesPerSecond: 1000}, c.now)
	for i := range 5 {
		if !l.readCall("s/a") {
			t.Fatalf("call %d refused", i)
		}
	}
	if l.readCall("s/a") {
		t.Fatal("6th call in the same instant accepted")
	}
	c.add(200 * time.Millisecond)
	if !l.readCall("s/a") {
		t.Fatal("call after 200ms refused")
	}
	l.readBytes("s/a", 2500) // 1,500 B of debt
	c.add(time.Second)
	if l.readCall("s/a") {
		t.Fatal("call accepted while 500 B in debt")
	}
	c.add(600 * time.Millisecond)
	if !l.readCall("s/a") {
		t.Fatal("call refused after the debt was paid")
	}
}

func TestShardMapFind(t *testing.T) {
	half := hashkey.MustParse("170141183460469231731687303715884105728")
	m := &shardMap{open: []shardInfo{
		{id: "a", rng: hashkey.Range{Start: hashkey.Key{}, End: hashkey.Key{Hi: half.Hi - 1, Lo: ^uint64(0)}}},
		{id: "b", rng: hashkey.Range{Start: half, End: hashkey.Max}},
	}}
	for _, c := range []struct {
		key  hashkey.Key
		want string
	}{{hashkey.Key{}, "a"}, {hashkey.Key{Hi: half.Hi - 1, Lo: ^uint64(0)}, "a"}, {half, "b"}, {hashkey.Max, "b"}} {
		got, ok := m.find(c.key)
		if !ok || got.id != c.want {
			t.Errorf("find(%s) = %q, %v; want %q", c.key, got.id, ok, c.want)
		}
	}
	gap := &shardMap{open: []shardInfo{{id: "b", rng: hashkey.Range{Start: half, End: hashkey.Max}}}}
	if _, ok := gap.find(hashkey.Key{}); ok {
		t.Error("found a shard for a key below every range")
	}
}

// container builds a KPL aggregated record holding n user records.
func container(n int) []byte {
	var e aggregation.Encoder
	for i := range n {
		e.Add(aggregation.Record{PartitionKey: fmt.Sprint("k", i%3), Data: []byte("hi")})
	}
	return e.Encode()
}

func TestUserRecords(t *testing.T) {
	badMD5 := container(3)
	badMD5[len(badMD5)-1] ^= 1
	truncated := container(3)
	truncated = append(truncated[:10], truncated[len(truncated)-16:]...)
	compressed, err := aggregation.Compress(nil, container(9), aggregation.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want int
	}{
		{"compressed 9", compressed, 9},
		{"plain", []byte("hello"), 1},
		{"empty", nil, 1},
		{"aggregated 1", container(1), 1},
		{"aggregated 7", container(7), 7},
		{"aggregated 100", container(100), 100},
		{"bad MD5", badMD5, 1},
		{"bad protobuf", truncated, 1},
		{"magic only", container(1)[:4], 1},
	} {
		if got := userRecords(c.data); got != c.want {
			t.Errorf("%s: userRecords = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestBase64Len(t *testing.T) {
	for n := range 10 {
		s := base64.StdEncoding.EncodeToString(make([]byte, n))
		if got := base64Len(s); got != n {
			t.Errorf("base64Len(%q) = %d, want %d", s, got, n)
		}
	}
}

func TestStreamKey(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/kinesis/aws4_request, SignedHeaders=host, Signature=abc")
	byName := streamKey(h, streamRef{Name: "s1"})
	byARN := streamKey(h, streamRef{ARN: "arn:aws:kinesis:eu-west-1:000000000000:stream/s1"})
	if byName != "eu-west-1/s1" || byARN != byName {
		t.Errorf("stream keys %q and %q, want both eu-west-1/s1", byName, byARN)
	}
	if got := streamKey(http.Header{}, streamRef{Name: "s1"}); got != "/s1" {
		t.Errorf("unsigned: %q", got)
	}
}

func TestSinkSequenceNumbers(t *testing.T) {
	s := newSink()
	prev := map[string]*big.Int{}
	for i := range 2000 {
		shard := []string{"x/a", "x/b"}[i%2]
		seq := s.sequenceNumber(shard)
		n, ok := new(big.Int).SetString(seq, 10)
		if !ok || len(seq) != 56 {
			t.Fatalf("sequence number %q is not 56 decimal digits", seq)
		}
		if p := prev[shard]; p != nil && n.Cmp(p) <= 0 {
			t.Fatalf("shard %s: %s after %s", shard, n, p)
		}
		prev[shard] = n
	}
}

func TestValidate(t *testing.T) {
	ok := Config{KinesisURL: "http://127.0.0.1:1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "at least one"},
		{Config{DynamoDBURL: "http://127.0.0.1:1", Sink: true}, "Sink needs KinesisURL"},
		{Config{KinesisURL: "127.0.0.1:1"}, "KinesisURL"},
		{Config{KinesisURL: "http://x", Limits: Limits{ReadCallsPerSecond: -1}}, "ReadCallsPerSecond"},
		{Config{KinesisURL: "http://x", Kinesis: KinesisFaults{InternalFailure: 1.5}}, "InternalFailure"},
		{Config{KinesisURL: "http://x", DynamoDB: DynamoDBFaults{Throttling: -0.1}}, "Throttling"},
		{Config{KinesisURL: "http://x", DynamoDB: DynamoDBFaults{Operations: []string{"PutRecords"}}}, `unknown operation "PutRecords"`},
		{Config{KinesisURL: "http://x", Kinesis: KinesisFaults{Latency: -time.Second}}, "negative latency"},
		{Config{KinesisURL: "http://x", ShardMapTTL: -1}, "ShardMapTTL"},
		{Config{KinesisURL: "http://x", ShardLifecycle: true, Retention: -time.Hour}, "Retention"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error mentioning %q", c.cfg, err, c.want)
		}
	}
}
