package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/e2e"
	"github.com/kinesisgo/kinesis/integration/testenv"
)

// testWriter sends the run's status lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The shorter demo: kinesis-agent ships a rotated log through the fault
// proxy (faults on) to three consumer processes; one is killed with
// SIGKILL and a shard is split while records flow. Nothing may be lost.
func TestAgentToWorkersNothingLost(t *testing.T) {
	ep := testenv.Require(t)
	if testing.Short() {
		t.Skip("end-to-end run takes about a minute")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const lines = 2000
	res, err := e2e.Run(ctx, e2e.Config{
		KinesisURL: ep.Kinesis, DynamoDBURL: ep.DynamoDB, Dir: dir,
		Lines: lines, Rate: 200, Shards: 4, Workers: 3, FailoverTime: 3 * time.Second,
		Rotations: 1, KillAt: 0.3, SplitAt: 0.5, Faults: true, DrainTimeout: time.Minute,
		Out: testWriter{t}, StatusEvery: 2 * time.Second,
	})
	if err != nil || res.Lost > 0 || res.Sent != lines || res.Distinct != lines {
		for _, f := range append([]string{filepath.Join(dir, "agent", "agent.log")}, globWorkerLogs(dir)...) {
			b, _ := os.ReadFile(f)
			t.Logf("--- last lines of %s:\n%s", f, lastLines(string(b), 20))
		}
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Log(res)
	if res.Sent != lines || res.Distinct != lines || res.Lost != 0 {
		t.Fatalf("%v; first lost line numbers: %v", res, res.Missing)
	}
}

func globWorkerLogs(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "out", "worker-*.log"))
	return m
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
