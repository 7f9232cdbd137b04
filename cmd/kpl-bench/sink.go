package main

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// A shard's write limits.
const (
	shardBytes   = 1 << 20
	shardRecords = 1000
)

// sink is a loopback Kinesis endpoint that answers ListShards and PutRecords
// for one stream and keeps nothing.
type sink struct {
	limit  bool
	starts []hashkey.Key // each shard's starting hash key, ascending
	ranges [][2]string

	mu sync.Mutex
	// Per shard, the write credit left: bytes and records, refilled at
	// the shard's rates up to one second's worth (a token bucket).
	bytes, recs []float64
	refilled    time.Time
	seq         int64
	// Totals of accepted entries, reported when the sink stops.
	accepted, acceptedBytes int64
	first, last             time.Time
}

func newSink(shards int, limit bool) *sink {
	s := &sink{limit: limit, bytes: make([]float64, shards), recs: make([]float64, shards), refilled: time.Now()}
	for i := range s.bytes {
		s.bytes[i], s.recs[i] = shardBytes, shardRecords
	}
	max := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(max, big.NewInt(int64(shards)))
	for i := 0; i < shards; i++ {
		lo := new(big.Int).Mul(step, big.NewInt(int64(i)))
		hi := new(big.Int).Sub(new(big.Int).Add(lo, step), big.NewInt(1))
		if i == shards-1 {
			hi = new(big.Int).Sub(max, big.NewInt(1))
		}
		s.starts = append(s.starts, hashkey.MustParse(lo.String()))
		s.ranges = append(s.ranges, [2]string{lo.String(), hi.String()})
	}
	return s
}

func runSink(o options) error {
	s := newSink(o.shards, o.limit)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("http://%s\n", ln.Addr())
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	secs := s.last.Sub(s.first).Seconds()
	fmt.Fprintf(os.Stderr, "sink               %d Kinesis records, %d B (data plus partition keys) accepted in %.1f s: %.0f B/s, %.1f%% of %d shard(s) at 1 MiB/s\n",
		s.accepted, s.acceptedBytes, secs, float64(s.acceptedBytes)/secs, 100*float64(s.acceptedBytes)/secs/float64(len(s.starts)<<20), len(s.starts))
	return nil
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch {
	case strings.HasSuffix(target, ".ListShards"):
		type rng struct{ StartingHashKey, EndingHashKey string }
		type seqRange struct{ StartingSequenceNumber string }
		type shard struct {
			ShardId             string
			HashKeyRange        rng
			SequenceNumberRange seqRange
		}
		var out struct{ Shards []shard }
		for i, rg := range s.ranges {
			out.Shards = append(out.Shards, shard{fmt.Sprintf("shardId-%012d", i), rng{rg[0], rg[1]}, seqRange{"1"}})
		}
		_ = json.NewEncoder(w).Encode(out)
	case strings.HasSuffix(target, ".PutRecords"):
		s.putRecords(w, r)
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"UnknownOperationException","message":"%s"}`, target)
	}
}

type putEntry struct {
	Data            string
	PartitionKey    string
	ExplicitHashKey string
}

func (s *sink) putRecords(w http.ResponseWriter, r *http.Request) {
	var in struct{ Records []putEntry }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"SerializationException","message":%q}`, err.Error())
		return
	}
	var b strings.Builder
	b.Grow(len(in.Records) * 100)
	b.WriteString(`{"Records":[`)
	failed := 0
	s.mu.Lock()
	now := time.Now()
	dt := now.Sub(s.refilled).Seconds()
	s.refilled = now
	for i := range s.bytes {
		s.bytes[i] = min(s.bytes[i]+dt*shardBytes, shardBytes)
		s.recs[i] = min(s.recs[i]+dt*shardRecords, shardRecords)
	}
	for i, e := range in.Records {
		k := hashkey.FromPartitionKey(e.PartitionKey)
		if e.ExplicitHashKey != "" {
			k, _ = hashkey.Parse(e.ExplicitHashKey)
		}
		sh := s.shardOf(k)
		size := int64(len(e.Data)/4*3 + len(e.PartitionKey))
		if strings.HasSuffix(e.Data, "==") {
			size -= 2
		} else if strings.HasSuffix(e.Data, "=") {
			size--
		}
		if i > 0 {
			b.WriteByte(',')
		}
		// Kinesis: a shard takes up to 1 MiB and 1,000 records per second.
		if s.limit && (s.bytes[sh] < float64(size) || s.recs[sh] < 1) {
			failed++
			b.WriteString(`{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard"}`)
			continue
		}
		s.bytes[sh] -= float64(size)
		s.recs[sh]--
		s.accepted++
		s.acceptedBytes += size
		s.seq++
		b.WriteString(`{"SequenceNumber":"`)
		b.WriteString(strconv.FormatInt(s.seq, 10))
		b.WriteString(`","ShardId":"shardId-`)
		fmt.Fprintf(&b, "%012d", sh)
		b.WriteString(`"}`)
	}
	if len(in.Records) > failed {
		if s.first.IsZero() {
			s.first = time.Now()
		}
		s.last = time.Now()
	}
	s.mu.Unlock()
	fmt.Fprintf(&b, `],"FailedRecordCount":%d}`, failed)
	_, _ = w.Write([]byte(b.String()))
}

func (s *sink) shardOf(k hashkey.Key) int {
	i := len(s.starts) - 1
	for i > 0 && s.starts[i].Cmp(k) > 0 {
		i--
	}
	return i
}
