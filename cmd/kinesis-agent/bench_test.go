package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/agent"
	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kpl"
)

// countingSink counts acknowledged records.
type countingSink struct {
	agent.Sink
	acked atomic.Int64
}

func (s *countingSink) Put(ctx context.Context, r agent.Record, done func(error)) error {
	return s.Sink.Put(ctx, r, func(err error) {
		if err == nil {
			s.acked.Add(1)
		}
		done(err)
	})
}

// BenchmarkFileToProxySink measures the whole agent, kpl included, from a
// file of 100-byte lines to the fault proxy in sink mode (which answers
// PutRecords itself), with aggregation on and off. The producer's per-shard
// rate limit is lifted so that the figure is the agent's and the
// producer's CPU cost, not a shard's quota. Run with -cpu 1 for a per-core
// figure.
func BenchmarkFileToProxySink(b *testing.B) {
	for _, aggregate := range []bool{true, false} {
		b.Run(fmt.Sprintf("aggregation=%v", aggregate), func(b *testing.B) {
			px := proxy.StartForTest(b, proxy.Config{Sink: true, NoLimits: true})
			_, stream := testenv.NewStream(b, 4)
			dir := b.TempDir()
			path := filepath.Join(dir, "bench.log")
			var sb strings.Builder
			for i := range b.N {
				s := fmt.Sprintf("bench %09d ", i)
				sb.WriteString(s + strings.Repeat("y", 99-len(s)) + "\n")
			}
			if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			file, err := load(writeConfig(b, map[string]any{
				"kinesis.endpoint": px.URL(), "kinesis.region": "us-east-1", "awsAccessKeyId": "test", "awsSecretAccessKey": "test",
				"flows": []any{map[string]any{"filePattern": path, "kinesisStream": stream, "initialPosition": "START_OF_FILE",
					"maxBufferAgeMillis": 100, "aggregation": aggregate}},
			}))
			if err != nil {
				b.Fatal(err)
			}
			cl, err := newClients(file)
			if err != nil {
				b.Fatal(err)
			}
			client := cl.kinesisFor(file.Flows[0])
			store, err := offsets.Open(filepath.Join(dir, "cp.json"))
			if err != nil {
				b.Fatal(err)
			}
			var sink atomic.Pointer[countingSink]
			a, err := agent.New(agent.Config{Flows: file.Flows, Offsets: store, Logger: zap.NewNop(),
				NewSink: func(fl config.Flow) (agent.Sink, error) {
					pc := agent.ProducerConfig(fl, client, nil, nil)
					pc.RateLimit = 1_000_000 // percent: no per-shard limit
					p, err := kpl.New(pc)
					if err != nil {
						return nil, err
					}
					cs := &countingSink{Sink: agent.KPLSink(p)}
					sink.Store(cs)
					return cs, nil
				}})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(100)
			b.ResetTimer()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- a.Run(ctx) }()
			for s := sink.Load(); s == nil || s.acked.Load() < int64(b.N); s = sink.Load() {
				time.Sleep(2 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
		})
	}
}

// throttler sits between the agent and the proxy: while on, it answers
// every PutRecords with each entry failed ProvisionedThroughputExceededException,
// as Kinesis answers records over a shard's write limit, so that nothing is
// written however the producer paces itself.
type throttler struct {
	on      atomic.Bool
	refused atomic.Int64
	next    http.Handler
}

func (th *throttler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !th.on.Load() || r.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" {
		th.next.ServeHTTP(w, r)
		return
	}
	var in struct{ Records []json.RawMessage }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	type entry struct{ ErrorCode, ErrorMessage string }
	out := struct {
		FailedRecordCount int
		Records           []entry
	}{FailedRecordCount: len(in.Records)}
	for range in.Records {
		out.Records = append(out.Records, entry{"ProvisionedThroughputExceededException", "Rate exceeded for shard (throttled by the benchmark)."})
	}
	th.refused.Add(int64(len(in.Records)))
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// peakRSS returns a process's peak resident set size (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		if kb, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
			return n << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}

// BenchmarkThrottledMemory runs the kinesis-agent process while its stream
// is throttled completely for 60 s and a file grows by 500 lines of 2 KiB a
// second (60 MiB; the agent's MaxPendingBytes of 32 MiB is reached before
// its MaxPendingRecords of 20,000, after about 33 s), then
// lifts the throttle. It reports the process's peak RSS 45 s into the
// throttle (reading has paused by then), at its end (about the same figure
// if memory is bounded) and after the catch-up. It fails if the peak during
// the throttle passes rssBound, or if a line is lost: every line must be
// written to the stream (the proxy answers PutRecords itself) and the saved
// offset must reach the end of the file. It runs once whatever b.N; about
// 90 s.
//
//	go test -run '^$' -bench ThrottledMemory -benchtime 1x ./cmd/kinesis-agent
func BenchmarkThrottledMemory(b *testing.B) {
	// rssBound is the documented ceiling of one flow's process under a
	// throttle and through the catch-up after it, with the default limits:
	// 32 MiB of pending record data, as much again for its encoding in
	// aggregated records and requests, twice that for the Go collector's
	// headroom (GOGC 100), and 32 MiB for the runtime, the SDK and the read
	// buffers.
	const rssBound = 160 << 20
	const (
		throttle = 60 * time.Second
		perSec   = 500
		lineLen  = 2048
	)
	px := proxy.StartForTest(b, proxy.Config{Sink: true})
	_, stream := testenv.NewStream(b, 4)
	th := &throttler{next: httputil.NewSingleHostReverseProxy(mustURL(b, px.URL()))}
	th.on.Store(true)
	front := httptest.NewServer(th)
	defer front.Close()
	dir := b.TempDir()
	logPath := filepath.Join(dir, "app.log")
	cp := filepath.Join(dir, "cp.json")
	cfg := writeConfig(b, map[string]any{
		"checkpointFile": cp, "kinesis.endpoint": front.URL,
		"flows": []any{map[string]any{"filePattern": logPath, "kinesisStream": stream, "initialPosition": "START_OF_FILE", "aggregation": true}},
	})
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	p := startAgentProcess(b, buildAgent(b), cfg)
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	written := 0
	writeSecond := func() {
		var sb strings.Builder
		for range perSec {
			s := fmt.Sprintf("throttled %09d ", written)
			sb.WriteString(s + strings.Repeat("z", lineLen-1-len(s)) + "\n")
			written++
		}
		if _, err := f.WriteString(sb.String()); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	var mid int64 // peak RSS three quarters through, once reading has paused
	for time.Since(start) < throttle {
		writeSecond()
		time.Sleep(time.Second - time.Since(start)%time.Second)
		if mid == 0 && time.Since(start) >= throttle*3/4 {
			if mid, err = peakRSS(p.cmd.Process.Pid); err != nil {
				b.Fatal(err)
			}
		}
	}
	during, err := peakRSS(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	if th.refused.Load() == 0 {
		b.Fatal("nothing was throttled")
	}
	if during > rssBound {
		b.Errorf("peak RSS %d MiB during the throttle, over the %d MiB bound", during>>20, rssBound>>20)
	}
	th.on.Store(false)
	caught := time.Now()
	fi, _ := f.Stat()
	wait.For(b, 120*time.Second, "the saved offset at the end of the file", func() bool {
		s, err := offsets.Open(cp)
		if err != nil {
			return false
		}
		e := s.Get(stream + ":" + logPath)
		return len(e) == 1 && e[0].Offset == fi.Size()
	})
	catchUp := time.Since(caught)
	b.StopTimer()
	after, err := peakRSS(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		b.Fatalf("exit after SIGTERM: %v", err)
	}
	if after > rssBound {
		b.Errorf("peak RSS %d MiB with the catch-up, over the %d MiB bound", after>>20, rssBound>>20)
	}
	if got := px.Stats().UserRecords; got < int64(written) {
		b.Fatalf("%d of %d lines written to the stream", got, written)
	}
	b.ReportMetric(float64(mid)/(1<<20), "peak-RSS-MiB-at-45s")
	b.ReportMetric(float64(during)/(1<<20), "peak-RSS-MiB-throttled")
	b.ReportMetric(float64(after)/(1<<20), "peak-RSS-MiB-total")
	b.ReportMetric(float64(written*lineLen)/(1<<20), "file-MiB")
	b.ReportMetric(catchUp.Seconds(), "catch-up-s")
}

func mustURL(tb testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}
