package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/agent/config"
)

// ackSink acknowledges every record at once: it measures the agent alone.
type ackSink struct{ n atomic.Int64 }

func (s *ackSink) Put(_ context.Context, _ Record, done func(error)) error {
	s.n.Add(1)
	done(nil)
	return nil
}
func (s *ackSink) Flush(context.Context) error { return nil }
func (s *ackSink) Close(context.Context) error { return nil }

// writeLines writes n lines of 100 bytes, newline included.
func writeLines(tb testing.TB, path string, n int) {
	tb.Helper()
	var b strings.Builder
	for i := range n {
		s := fmt.Sprintf("bench %09d ", i)
		b.WriteString(s + strings.Repeat("y", 99-len(s)) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkFileToSink measures reading, splitting and handing over 100-byte
// lines, with a sink that acknowledges at once. Run with -cpu 1 for a
// per-core figure.
func BenchmarkFileToSink(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.log")
	writeLines(b, path, b.N)
	sink := &ackSink{}
	fl := flowFor(path)
	a, err := New(Config{Flows: []config.Flow{fl}, Offsets: openStore(b, filepath.Join(dir, "cp.json")),
		NewSink: func(config.Flow) (Sink, error) { return sink, nil }})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(100)
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- a.Run(ctx) }()
	for sink.n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
}
