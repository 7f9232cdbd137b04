package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/agent"
	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
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
