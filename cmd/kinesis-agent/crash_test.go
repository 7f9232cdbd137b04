package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
)

// crashLine is line i of the crash test: 100 bytes with its newline.
func crashLine(i int) string {
	s := fmt.Sprintf("crash %06d ", i)
	return s + strings.Repeat("x", 99-len(s)) + "\n"
}

// TestRotationsAndKillNineLoseNothing writes 20,000 lines while the file is
// rotated three times (rename, copytruncate, rename) and the agent is
// killed with SIGKILL once and restarted, sending through the fault proxy
// (AWS's limits, 1% of entries failed, 1% of calls answered 500). Every line
// must be read back; duplicates may only come from the crash window.
func TestRotationsAndKillNineLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	px := proxy.StartForTest(t, proxy.Config{Seed: 7, Kinesis: proxy.KinesisFaults{InternalFailure: 0.01, ServerError: 0.01}})
	client, stream := testenv.NewStream(t, 2)
	bin := buildAgent(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	cfgPath := writeConfig(t, map[string]any{
		"checkpointFile":        filepath.Join(dir, "state", "checkpoints.json"),
		"kinesis.endpoint":      px.URL(),
		"shutdownTimeoutMillis": 5000,
		"flows": []any{map[string]any{
			"filePattern": logPath + "*", "kinesisStream": stream, "initialPosition": "START_OF_FILE",
			"maxBufferAgeMillis": 200, "aggregation": true,
		}},
	})
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	agentProc := startAgentProcess(t, bin, cfgPath)

	const total = 20_000
	var (
		mu      sync.Mutex // held by the writer per batch and by rotations
		f       *os.File
		written int
	)
	reopen := func() {
		if f != nil {
			f.Close()
		}
		var err error
		if f, err = os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			t.Error(err)
		}
	}
	reopen()
	defer func() { f.Close() }()
	writeBatch := func(n int) {
		var b strings.Builder
		for range n {
			b.WriteString(crashLine(written))
			written++
		}
		if _, err := f.WriteString(b.String()); err != nil {
			t.Error(err)
		}
	}
	rotateRename := func(to string) {
		if err := os.Rename(logPath, to); err != nil {
			t.Error(err)
		}
		writeBatch(10) // the application writes on to the old descriptor...
		reopen()       // ...until it is told to reopen
	}
	rotateCopyTruncate := func(to string) {
		b, err := os.ReadFile(logPath)
		if err == nil {
			err = os.WriteFile(to, b, 0o644)
		}
		if err == nil {
			err = os.Truncate(logPath, 0)
		}
		if err != nil {
			t.Error(err)
		}
	}

	r := newReader(t, client, stream)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for {
			mu.Lock()
			if written >= total {
				mu.Unlock()
				return
			}
			writeBatch(50)
			switch written {
			case 5000:
				rotateRename(logPath + ".1")
			case 10000:
				rotateCopyTruncate(logPath + ".2")
			case 15000:
				rotateRename(logPath + ".3")
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // pace the writer: about 2,500 lines/s at most
		}
	}()
	// Kill while the agent is busy: some lines acknowledged, more in flight
	// or acknowledged since the last save, the writer still writing.
	waitFor(t, "agent to ship", 60*time.Second, func() bool {
		r.poll(t.Context())
		return r.total >= 6000 // after the first rotation
	})
	mu.Lock()
	killedAt := written
	mu.Unlock()
	_ = agentProc.stop(syscall.SIGKILL)
	t.Logf("killed at line %d", killedAt)
	agentProc = startAgentProcess(t, bin, cfgPath)
	<-writerDone
	t.Logf("wrote %d lines (%d bytes)", written, written*100)

	want := make([]string, 0, written)
	for i := range written {
		want = append(want, crashLine(i))
	}
	r.waitAll(want, 90*time.Second)
	if err := agentProc.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	var dups []int
	for data, n := range r.counts {
		if n > 1 {
			i, err := strconv.Atoi(strings.Fields(data)[1])
			if err != nil {
				t.Fatalf("unexpected record %q", data)
			}
			dups = append(dups, i)
		}
	}
	sort.Ints(dups)
	t.Logf("read %d records for %d lines: %d duplicated lines", r.total, written, len(dups))
	// Only records read before the kill and not yet acknowledged can be
	// sent twice: lines written before it, within the agent's in-flight
	// window.
	for _, d := range dups {
		if d >= killedAt {
			t.Fatalf("line %d duplicated but written after the kill (at line %d)", d, killedAt)
		}
	}
	if len(dups) > 0 && dups[len(dups)-1]-dups[0] > 5000 {
		t.Errorf("duplicates spread over lines %d..%d: more than an in-flight window", dups[0], dups[len(dups)-1])
	}
	st := px.Stats()
	t.Logf("proxy stats: %+v", st)
}
