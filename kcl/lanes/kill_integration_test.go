package lanes_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// process is a lanesconsumer process and the records it printed.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when its output is read to the end

	mu      sync.Mutex
	handled []seen
}

func (p *process) records() []seen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seen(nil), p.handled...)
}

// detachedForwarder forwards each request to upstream whole and on a
// context of its own, and returns its URL: a client killed mid-request
// never aborts a request to the emulator (dynalite exits when a request is
// aborted while it reads it).
func detachedForwarder(t *testing.T, upstream string) string {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // the client is gone before its request was whole: nothing was sent
		}
		r = r.WithContext(context.WithoutCancel(r.Context()))
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// startConsumer starts a lanesconsumer process reaching DynamoDB through
// ddbURL; it is shut down gracefully when the test ends.
func (e *env) startConsumer(bin, ddbURL string, args ...string) *process {
	t := e.t
	args = append([]string{"-stream", e.stream, "-table", e.table}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_KINESIS="+e.kinURL, "AWS_ENDPOINT_URL_DYNAMODB="+ddbURL,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 5 {
				t.Errorf("bad line %q", sc.Text())
				continue
			}
			sub, _ := strconv.ParseUint(f[3], 10, 64)
			key, nStr, _ := strings.Cut(f[4], "#")
			n, _ := strconv.Atoi(nStr)
			p.mu.Lock()
			p.handled = append(p.handled, seen{key: key, n: n, pos: checkpoint.SequenceNumber{Sequence: f[2], SubSequence: sub}})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t, 30*time.Second)
	})
	return p
}

func (p *process) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Errorf("consumer output not closed within %v", within)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.cmd.Wait()
}

// TestIntegrationKill9KeepsWatermark kills a consumer with 10 lanes with
// SIGKILL while it handles 20,000 records of 100 keys (one in ten failing
// every call and going to a JSON-lines file) and starts another: every
// record is handled or in the file, none at or below the checkpoint left
// by the killed process is handled or stored again, each process handles
// every key's records in sequence order, and every line of the file is a
// whole record.
func TestIntegrationKill9KeepsWatermark(t *testing.T) {
	e := newEnv(t, 1)
	bin := filepath.Join(t.TempDir(), "lanesconsumer")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/kinesisgo/kinesis/kcl/lanes/internal/lanesconsumer").CombinedOutput(); err != nil {
		t.Fatalf("go build lanesconsumer: %v\n%s", err, out)
	}
	dest := filepath.Join(t.TempDir(), "failed.jsonl")
	total := e.put(100, 200, nil)
	args := []string{"-worker", "w", "-parallelism", "10", "-batch-size", "10", "-sleep", "5ms", "-poison-suffix", "7", "-dest", dest}
	isPoison := func(s seen) bool { return strings.HasSuffix(strconv.Itoa(s.n), "7") }

	ddb := detachedForwarder(t, e.ddbURL) // the kill must not abort a request to dynalite
	first := e.startConsumer(bin, ddb, args...)
	wait.For(t, 60*time.Second, "4,000 records handled", func() bool { return len(first.records()) >= 4000 })
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.wait(t, 10*time.Second)
	const shard = "shardId-000000000000"
	mark := e.checkpointOf(shard)
	atKill := len(first.records())
	stored := len(readEnvelopes(t, dest))
	t.Logf("killed after %d records handled and %d stored; checkpoint %s", atKill, stored, mark)
	if atKill >= total-total/5 {
		t.Fatalf("the first process handled %d records of %d before the kill: too late to test the restart", atKill, total)
	}

	second := e.startConsumer(bin, ddb, args...)
	all := func() (map[checkpoint.SequenceNumber]int, int) {
		n := map[checkpoint.SequenceNumber]int{}
		for _, p := range []*process{first, second} {
			for _, s := range p.records() {
				n[s.pos]++
			}
		}
		envs := readEnvelopes(t, dest)
		for _, env := range envs {
			n[checkpoint.SequenceNumber{Sequence: env.Record.SequenceNumber, SubSequence: env.Record.SubSequenceNumber}]++
		}
		return n, len(envs)
	}
	wait.For(t, 60*time.Second, "every record handled or stored", func() bool { n, _ := all(); return len(n) >= total })

	for _, p := range []*process{first, second} {
		last := map[string]checkpoint.SequenceNumber{}
		for _, s := range p.records() {
			if isPoison(s) {
				t.Errorf("poison record %s#%d handled", s.key, s.n)
			}
			if prev, ok := last[s.key]; ok && s.pos.Compare(prev) <= 0 {
				t.Errorf("key %s: record %s after %s", s.key, s.pos, prev)
			}
			last[s.key] = s.pos
		}
	}
	counts, inFile := all()
	again := 0
	for pos, n := range counts {
		if n > 1 {
			again++
			if pos.Compare(mark) <= 0 {
				t.Errorf("record %s processed %d times, though at or below the killed process's checkpoint %s", pos, n, mark)
			}
		}
	}
	t.Logf("%d records, %d in the file, %d processed again after the kill (at most MaxInFlight and a delivered batch)", len(counts), inFile, again)
	if len(counts) != total {
		t.Errorf("%d distinct records handled or stored, want %d", len(counts), total)
	}
	if want := total / 10; inFile < want {
		t.Errorf("%d records in the file, want at least the %d poison ones", inFile, want)
	}
	if mark.Sequence == "" || mark.IsPosition() {
		t.Errorf("the killed process left no checkpoint (%s): the test did not test the watermark", mark)
	}
}
