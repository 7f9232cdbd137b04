package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
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
	r := newReader(t, client, stream)
	crashTest(t, px, map[string]any{"kinesisStream": stream, "aggregation": true}, func(ctx context.Context) (map[string]int, int) {
		r.poll(ctx)
		return r.counts, r.total
	})
}

// TestFirehoseRotationsAndKillNineLoseNothing is the same run for a
// deliveryStream flow: the proxy's Firehose throttles (a 2,000 records/s
// limit, and 2% of calls refused) and fails 1% of the records of each
// call; every line must arrive in the delivery folder.
func TestFirehoseRotationsAndKillNineLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	px := proxy.StartForTest(t, proxy.Config{Seed: 9, Firehose: &proxy.FirehoseConfig{Dir: t.TempDir(), RecordsPerSecond: 2000,
		Faults: proxy.FirehoseFaults{Throttle: 0.02, RecordFailure: 0.01}}})
	crashTest(t, px, map[string]any{"deliveryStream": "crash"}, func(context.Context) (map[string]int, int) {
		counts := map[string]int{}
		lines := deliveredLines(t, px, "crash")
		for _, l := range lines {
			counts[l]++
		}
		return counts, len(lines)
	})
	if st := px.Stats(); st.Throttled == 0 || st.Faults == 0 {
		t.Errorf("no throttling or faults: %+v", st)
	}
}

// crashTest runs the crash test of a flow (dest: its kinesisStream or
// deliveryStream key) through px; arrived reports what has arrived so far:
// each record's data and how often it arrived, and their total.
func crashTest(t *testing.T, px *proxy.Proxy, dest map[string]any, arrived func(context.Context) (map[string]int, int)) {
	bin := buildAgent(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	flow := map[string]any{"filePattern": logPath + "*", "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 200}
	maps.Copy(flow, dest)
	cfgPath := writeConfig(t, map[string]any{
		"checkpointFile":        filepath.Join(dir, "state", "checkpoints.json"),
		"kinesis.endpoint":      px.URL(),
		"firehose.endpoint":     px.URL(),
		"shutdownTimeoutMillis": 5000,
		"flows":                 []any{flow},
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
	// Each rotation happens once the writer has passed its line.
	rotations := []struct {
		at int
		do func()
	}{
		{5000, func() { rotateRename(logPath + ".1") }},
		{10000, func() { rotateCopyTruncate(logPath + ".2") }},
		{15000, func() { rotateRename(logPath + ".3") }},
	}
	var rotated []int // the line counts at which rotations happened

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for {
			mu.Lock()
			if written >= total {
				mu.Unlock()
				return
			}
			writeBatch(min(50, total-written))
			if len(rotations) > 0 && written >= rotations[0].at {
				rotated = append(rotated, written)
				rotations[0].do()
				rotations = rotations[1:]
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // pace the writer: about 2,500 lines/s at most
		}
	}()
	// Kill while the agent is busy: some lines acknowledged, more in flight
	// or acknowledged since the last save, the writer still writing.
	wait.For(t, 60*time.Second, "agent to ship", func() bool {
		_, n := arrived(t.Context())
		return n >= 6000 // after the first rotation
	})
	// The writer waits while the agent is killed: lines numbered from
	// killedAt on are written after the kill.
	mu.Lock()
	killedAt := written
	_ = agentProc.stop(syscall.SIGKILL)
	mu.Unlock()
	saved := savedLines(t, filepath.Join(dir, "state", "checkpoints.json"), dir)
	t.Logf("killed at line %d; %d lines saved as acknowledged", killedAt, len(saved))
	agentProc = startAgentProcess(t, bin, cfgPath)
	<-writerDone
	t.Logf("wrote %d lines (%d bytes); rotated after lines %v", written, written*100, rotated)
	if len(rotated) != 3 {
		t.Errorf("%d rotations happened, want 3", len(rotated))
	}

	want := make([]string, 0, written)
	for i := range written {
		want = append(want, crashLine(i))
	}
	var counts map[string]int
	var n int
	deadline := time.Now().Add(90 * time.Second)
	for {
		counts, n = arrived(t.Context())
		missing, first := 0, ""
		for _, w := range want {
			if counts[w] == 0 {
				if missing == 0 {
					first = w
				}
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines never arrived (first: %q)", missing, len(want), first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := agentProc.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	var dups []int
	for data, c := range counts {
		if c > 1 {
			i, err := strconv.Atoi(strings.Fields(data)[1])
			if err != nil {
				t.Fatalf("unexpected record %q", data)
			}
			dups = append(dups, i)
		}
	}
	sort.Ints(dups)
	t.Logf("read %d records for %d lines: %d duplicated lines", n, written, len(dups))
	// Only records read before the kill and not yet saved as acknowledged
	// can be sent twice: lines written before the kill and past the
	// offsets in the checkpoint file the killed agent left. (How far the
	// agent had read ahead of its acknowledgements depends on how fast
	// the service answered, up to MaxPendingRecords.)
	for _, d := range dups {
		if d >= killedAt {
			t.Fatalf("line %d duplicated but written after the kill (at line %d)", d, killedAt)
		}
		if saved[d] {
			t.Fatalf("line %d duplicated but saved as acknowledged before the kill", d)
		}
	}
	if len(dups) > 0 {
		t.Logf("duplicated lines %d..%d", dups[0], dups[len(dups)-1])
	}
	t.Logf("proxy stats: %+v", px.Stats())
}

// savedLines returns the line numbers of the crash test's lines that the
// agent's checkpoint file says were acknowledged: in each file it names
// (found in dir by inode), the lines before the saved offset.
func savedLines(t *testing.T, checkpoints, dir string) map[int]bool {
	t.Helper()
	b, err := os.ReadFile(checkpoints)
	if errors.Is(err, os.ErrNotExist) {
		return nil // killed before the first save
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Flows map[string][]offsets.Entry `json:"flows"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("checkpoint file: %v", err)
	}
	byInode := map[uint64]string{}
	names, err := filepath.Glob(filepath.Join(dir, "app.log*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			byInode[st.Ino] = name
		}
	}
	saved := map[int]bool{}
	for _, entries := range doc.Flows {
		for _, e := range entries {
			name, ok := byInode[e.Inode]
			if !ok || e.Offset == 0 {
				continue
			}
			f, err := os.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			// An entry whose fingerprint no longer matches the file's head
			// describes the content before a truncation (copytruncate
			// rotation): its offset says nothing of the lines there now.
			head := make([]byte, e.FingerprintSize)
			if _, err := io.ReadFull(f, head); err != nil {
				f.Close()
				continue // shorter than the fingerprint: truncated since
			}
			if sum := sha256.Sum256(head); hex.EncodeToString(sum[:]) != e.Fingerprint {
				f.Close()
				continue
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			first := make([]byte, len(crashLine(0)))
			_, err = io.ReadFull(f, first)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			n, err := strconv.Atoi(strings.Fields(string(first))[1])
			if err != nil {
				t.Fatalf("%s starts with %q", name, first)
			}
			for i := range int(e.Offset) / len(first) {
				saved[n+i] = true
			}
		}
	}
	return saved
}
