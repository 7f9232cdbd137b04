package kcl_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/internal/wait"
)

// consumerProcess is one testconsumer process.
type consumerProcess struct {
	id   string
	cmd  *exec.Cmd
	done chan struct{} // closed when its output is read to the end
}

// TestIntegrationMultiProcessKill9 runs three consumer processes on a
// 4-shard stream and kills one with SIGKILL while records flow: the other
// two take its shards over and every record is processed; records are
// processed twice only after the killed process's last checkpoint (the
// processes checkpoint every third batch, so some are).
func TestIntegrationMultiProcessKill9(t *testing.T) {
	e := newEnv(t, 4)
	bin := filepath.Join(t.TempDir(), "testconsumer")
	build := exec.Command("go", "build", "-o", bin, "github.com/kinesisgo/kinesis/kcl/internal/testconsumer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build testconsumer: %v\n%s", err, out)
	}
	environ := append(os.Environ(),
		"AWS_ENDPOINT_URL_KINESIS="+e.kinURL, "AWS_ENDPOINT_URL_DYNAMODB="+e.ddbURL,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")

	var mu sync.Mutex
	var all []delivery
	procs := map[string]*consumerProcess{}
	for i := range 3 {
		id := fmt.Sprintf("proc-%d", i)
		cmd := exec.Command(bin, "-stream", e.stream, "-table", e.table, "-worker", id, "-failover", e.failover.String(), "-checkpoint-every", "3")
		cmd.Env = environ
		cmd.Stderr = testWriter{t, id}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &consumerProcess{id: id, cmd: cmd, done: make(chan struct{})}
		procs[id] = p
		go func() {
			defer close(p.done)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 6 {
					t.Errorf("%s: bad line %q", id, sc.Text())
					continue
				}
				sub, _ := strconv.ParseUint(f[4], 10, 64)
				mu.Lock()
				all = append(all, delivery{worker: f[0], shard: f[1], pk: f[2], seq: f[3], sub: sub, data: f[5]})
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			waitExit(t, p, 30*time.Second)
		})
	}
	snapshot := func() []delivery {
		mu.Lock()
		defer mu.Unlock()
		return append([]delivery(nil), all...)
	}
	distinct := func() int {
		seen := map[string]bool{}
		for _, d := range snapshot() {
			seen[d.id()] = true
		}
		return len(seen)
	}

	e.waitBalancedInTable(1, 1, 2)
	p := &producer{client: e.kinesis, stream: e.stream, pause: 100 * time.Millisecond}
	p.put(t, 100, 5)
	wait.For(t, 60*time.Second, "the first 500 records", func() bool { return distinct() >= p.total() })

	// kill -9 the process holding two leases, while records flow.
	var victim string
	for owner, n := range e.owners() {
		if n == 2 {
			victim = owner
		}
	}
	if victim == "" {
		t.Fatalf("no process holds two leases: %v", e.owners())
	}
	var flow sync.WaitGroup
	flow.Add(1)
	base := p.total()
	go func() { defer flow.Done(); p.put(t, 100, 20) }() // about 2s of records
	wait.For(t, 60*time.Second, "records flowing", func() bool { return distinct() >= base+200 })
	if err := procs[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, procs[victim], 10*time.Second)
	killed := time.Now()
	checkpoints := map[string]string{}
	for _, l := range e.leases() {
		if l.Owner == victim {
			checkpoints[l.Key] = l.Checkpoint + "/" + strconv.FormatUint(l.CheckpointSubSequence, 10)
		}
	}
	wait.For(t, 30*time.Second, "the survivors to own the killed process's shards", func() bool {
		ls, ok := e.readLeases()
		if !ok {
			return false
		}
		for _, l := range ls {
			if _, ok := checkpoints[l.Key]; ok && (l.Owner == victim || l.Owner == "") {
				return false
			}
		}
		return true
	})
	t.Logf("shards of the killed process (%s, checkpoints %v) owned again %v after the kill", victim, checkpoints, time.Since(killed))
	flow.Wait()
	wait.For(t, 60*time.Second, "every record", func() bool { return distinct() >= p.total() })

	// Per process the records of a key come in order; every record came;
	// repeats are from the killed process's shards, after its checkpoint.
	got := snapshot()
	seen := map[string]bool{}
	last := map[string]int{} // process+key -> last record number
	dups := 0
	for _, d := range got {
		k, nStr, _ := strings.Cut(d.data, "#")
		n, _ := strconv.Atoi(nStr)
		pk := d.worker + " " + k
		if prev, ok := last[pk]; ok && n <= prev {
			t.Errorf("%s: key %s record %d after %d", d.worker, k, n, prev)
		}
		last[pk] = n
		if seen[d.id()] {
			dups++
			cp, ok := checkpoints[d.shard]
			if !ok {
				t.Errorf("record %s of shard %s processed twice; the killed process did not hold it", d.id(), d.shard)
			} else if cmpPos(d.id(), cp) <= 0 {
				t.Errorf("record %s processed twice though at or before the checkpoint %s", d.id(), cp)
			}
		}
		seen[d.id()] = true
	}
	t.Logf("%d records, %d processed twice", len(seen), dups)
	if len(seen) != p.total() {
		t.Errorf("%d distinct records processed, want %d", len(seen), p.total())
	}
}

// waitBalancedInTable waits until the lease table shows the unfinished
// leases owned as want (counts per owner, none unowned), and stays so for
// longer than a renewal interval: a process that lost a lease to a steal
// learns it at its next renewal, so no process then works on a shard it
// no longer owns.
func (e *env) waitBalancedInTable(want ...int) {
	e.t.Helper()
	balanced := func() bool {
		o := e.owners()
		if o[""] > 0 || len(o) != len(want) {
			return false
		}
		counts := map[int]int{}
		for _, n := range o {
			counts[n]++
		}
		for _, n := range want {
			counts[n]--
		}
		for _, c := range counts {
			if c != 0 {
				return false
			}
		}
		return true
	}
	var since time.Time
	stable := e.failover/3 + 500*time.Millisecond // RenewInterval, and some
	wait.For(e.t, 30*time.Second, fmt.Sprintf("leases balanced as %v for %v", want, stable), func() bool {
		if !balanced() {
			since = time.Time{}
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= stable
	})
}

func waitExit(t *testing.T, p *consumerProcess, within time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Errorf("%s: output not closed within %v", p.id, within)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.cmd.Wait()
}

// testWriter sends a process's standard error to the test log.
type testWriter struct {
	t  *testing.T
	id string
}

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s: %s", w.id, strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
