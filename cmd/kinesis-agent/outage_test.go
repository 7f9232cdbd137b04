package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/agent"
	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kpl"
)

// TestOutagePausesAndResumes makes Kinesis unreachable (every call answered
// 503) long enough for the producer to give up on records (a short record
// TTL): positions must stay put, the failed records must be put again, and
// once Kinesis answers every line must arrive.
func TestOutagePausesAndResumes(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{Kinesis: proxy.KinesisFaults{Unavailable: 1}})
	client, stream := testenv.NewStream(t, 1)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	lines := numbered("outage", 0, 2000)
	appendLines(t, logPath, lines)
	file, err := load(writeConfig(t, map[string]any{
		"kinesis.endpoint": px.URL(), "kinesis.region": "us-east-1", "awsAccessKeyId": "test", "awsSecretAccessKey": "test",
		"checkpointFile": filepath.Join(dir, "cp.json"),
		"flows": []any{map[string]any{"filePattern": logPath, "kinesisStream": stream, "initialPosition": "START_OF_FILE",
			"maxBufferAgeMillis": 100, "aggregation": true}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := newClients(file)
	if err != nil {
		t.Fatal(err)
	}
	kc := cl.kinesisFor(file.Flows[0])
	store, err := offsets.Open(file.CheckpointFile)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := agent.New(agent.Config{
		Flows: file.Flows, Offsets: store, Logger: zap.NewNop(), Metrics: reg, RetryBackoff: 100 * time.Millisecond,
		NewSink: func(fl config.Flow) (agent.Sink, error) {
			pc := agent.ProducerConfig(fl, kc, nil, nil)
			pc.RecordTTL = 500 * time.Millisecond
			p, err := kpl.New(pc)
			if err != nil {
				return nil, err
			}
			return agent.KPLSink(p), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	failures := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "kinesis_agent_record_failures_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	wait.For(t, 20*time.Second, "records to expire and be put again", func() bool { return failures() >= 2000 })
	cp, err := offsets.Open(file.CheckpointFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cp.Get(file.Flows[0].ID()) {
		if e.Offset != 0 {
			t.Fatalf("offset %d saved while nothing was acknowledged", e.Offset)
		}
	}

	if err := px.SetKinesisFaults(proxy.KinesisFaults{}); err != nil {
		t.Fatal(err)
	}
	r := newReader(t, client, stream)
	r.waitAll(lines, 60*time.Second)
	fi, _ := os.Stat(logPath)
	wait.For(t, 10*time.Second, "offset at the end", func() bool {
		s, err := offsets.Open(file.CheckpointFile)
		if err != nil {
			return false
		}
		e := s.Get(file.Flows[0].ID())
		return len(e) == 1 && e[0].Offset == fi.Size()
	})
	t.Logf("read %d records for %d lines", r.total, len(lines))
}

// TestMissingStreamIsReported runs the agent with a stream that does not
// exist: the error is logged at error level naming the flow and the code,
// and counted, instead of records being tried again in silence.
func TestMissingStreamIsReported(t *testing.T) {
	ep := testenv.Require(t)
	bin := buildAgent(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	appendLines(t, logPath, numbered("lost", 0, 5))
	stream := testenv.UniqueName(t) // never created
	flow := stream + ":" + logPath
	cfg := writeConfig(t, map[string]any{"checkpointFile": filepath.Join(dir, "cp.json"), "metrics.listen": "127.0.0.1:0",
		"flows": []any{map[string]any{"filePattern": logPath, "kinesisStream": stream, "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 100}}})
	p := startAgentProcess(t, bin, cfg, "AWS_ENDPOINT_URL_KINESIS="+ep.Kinesis)
	wait.For(t, 30*time.Second, "the missing stream counted", func() bool {
		v, _ := p.series("stream_unavailable_total", `code="ResourceNotFoundException",flow="`+flow+`"`)
		return v >= 1
	})
	// The log line is written as the failure is counted; the process's
	// output reaches the test a moment later.
	logged := func() bool {
		for _, l := range strings.Split(p.log(), "\n") {
			if strings.Contains(l, `"level":"error"`) && strings.Contains(l, `"flow":"`+flow+`"`) &&
				strings.Contains(l, `"code":"ResourceNotFoundException"`) {
				return true
			}
		}
		return false
	}
	if !wait.Until(5*time.Second, logged) {
		t.Error("no error logged naming the flow and ResourceNotFoundException")
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}
