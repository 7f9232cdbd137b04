package kcl_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
)

// consumerProcess is one testconsumer process.
type consumerProcess struct {
	id   string
	cmd  *exec.Cmd
	done chan struct{} // closed when its output is read to the end
}

// consumers runs testconsumer processes against one env and gathers what
// they print: the records they processed, and their lease events.
type consumers struct {
	t       *testing.T
	e       *env
	bin     string
	environ []string

	mu     sync.Mutex
	all    []delivery
	events []event // in the order read
}

// event is a "#" line of a process: "<label> <what> <shard> [...]".
type event struct {
	fields []string
	at     time.Time // when it was read
}

func newConsumers(t *testing.T, e *env) *consumers {
	bin := filepath.Join(t.TempDir(), "testconsumer")
	build := exec.Command("go", "build", "-o", bin, "github.com/kinesisgo/kinesis/kcl/internal/testconsumer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build testconsumer: %v\n%s", err, out)
	}
	environ := append(os.Environ(),
		"AWS_ENDPOINT_URL_KINESIS="+e.kinURL, "AWS_ENDPOINT_URL_DYNAMODB="+e.ddbURL,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	return &consumers{t: t, e: e, bin: bin, environ: environ}
}

// start starts a process with the worker ID id, printing label on its
// lines; it is shut down gracefully when the test ends.
func (c *consumers) start(id, label string, args ...string) *consumerProcess {
	t := c.t
	args = append([]string{"-stream", c.e.stream, "-table", c.e.table, "-worker", id, "-label", label, "-failover", c.e.failover.String()}, args...)
	if c.e.mode == kcl.RetrievalFanOut {
		args = append(args, "-fan-out")
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.environ
	cmd.Stderr = testWriter{t, label}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &consumerProcess{id: label, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if ev, ok := strings.CutPrefix(line, "# "); ok {
				c.mu.Lock()
				c.events = append(c.events, event{fields: strings.Fields(ev), at: time.Now()})
				c.mu.Unlock()
				continue
			}
			f := strings.Fields(line)
			if len(f) != 6 {
				t.Errorf("%s: bad line %q", label, line)
				continue
			}
			sub, _ := strconv.ParseUint(f[4], 10, 64)
			c.mu.Lock()
			c.all = append(c.all, delivery{worker: f[0], shard: f[1], pk: f[2], seq: f[3], sub: sub, data: f[5]})
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, p, 30*time.Second)
	})
	return p
}

func (c *consumers) snapshot() []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

// find returns the events of label whose next fields are what (and a
// shard, when given).
func (c *consumers) find(label, what, shard string) []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event
	for _, ev := range c.events {
		if len(ev.fields) >= 3 && ev.fields[0] == label && ev.fields[1] == what && (shard == "" || ev.fields[2] == shard) {
			out = append(out, ev)
		}
	}
	return out
}

func (c *consumers) distinct() int {
	seen := map[string]bool{}
	for _, d := range c.snapshot() {
		seen[d.id()] = true
	}
	return len(seen)
}

// TestIntegrationMultiProcessKill9 runs, in each retrieval mode, three
// consumer processes on a 4-shard stream and kills the leader with SIGKILL while records flow:
// another process leads within FailoverTime, the other two take its shards
// over within FailoverTime and a pass, and every record is processed;
// records are processed twice only after the killed process's last
// checkpoint (the processes checkpoint every third batch, so some are).
func TestIntegrationMultiProcessKill9(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode kcl.RetrievalMode) {
		e := newModeEnv(t, 4, mode)
		cs := newConsumers(t, e)
		procs := map[string]*consumerProcess{}
		for i := range 3 {
			id := fmt.Sprintf("proc-%d", i)
			procs[id] = cs.start(id, id, "-checkpoint-every", "3")
		}
		snapshot, distinct := cs.snapshot, cs.distinct

		e.waitBalancedInTable(1, 1, 2)
		p := &producer{client: e.kinesis, stream: e.stream, pause: 100 * time.Millisecond}
		p.put(t, 100, 5)
		wait.For(t, 60*time.Second, "the first 500 records", func() bool { return distinct() >= p.total() })

		// kill -9 the leader, while records flow: it holds leases as the
		// others do, and leads (scans the table and assigns leases).
		victim := e.leader().Owner
		if _, ok := procs[victim]; !ok || e.owners()[victim] == 0 {
			t.Fatalf("leader %q is not a process holding leases: %v", victim, e.owners())
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
		var newLeader string
		led := wait.For(t, 30*time.Second, "a new leader", func() bool {
			newLeader = e.leader().Owner
			return newLeader != "" && newLeader != victim
		})
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
		reowned := time.Since(killed)
		t.Logf("shards of the killed process (%s, checkpoints %v) owned again %v after the kill; a new leader (%s) after %v", victim, checkpoints, reowned, newLeader, led)
		// A new leader within FailoverTime; the leases owned again within
		// FailoverTime and one pass (the new leader's check of the
		// heartbeats, FailoverTime/3), each with 1 s for the emulators.
		if led > e.failover+time.Second {
			t.Errorf("new leader %v after the kill, want within FailoverTime %v (+1 s)", led, e.failover)
		}
		if limit := e.failover + e.failover/3 + time.Second; reowned > limit {
			t.Errorf("the killed leader's leases owned again %v after the kill, want within %v", reowned, limit)
		}
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
	})
}

// TestIntegrationMultiProcessNoDuplicateWithoutCrash: three consumer
// processes started 3 s apart on a 4-shard stream while records flow, then
// one stopped with SIGTERM: the leases move by hand-over as each process
// joins and by release as one leaves, each after the holder's last
// checkpoint, so every record is delivered exactly once.
func TestIntegrationMultiProcessNoDuplicateWithoutCrash(t *testing.T) {
	e := newEnv(t, 4)
	cs := newConsumers(t, e)
	p := &producer{client: e.kinesis, stream: e.stream, pause: 30 * time.Millisecond}
	var flow sync.WaitGroup
	flow.Add(1)
	go func() { defer flow.Done(); p.put(t, 40, 50) }() // 2,000 records over the joins
	procs := make([]*consumerProcess, 3)
	for i := range procs {
		if i > 0 {
			time.Sleep(3 * time.Second) // the scenario: processes started 3 s apart
		}
		id := fmt.Sprintf("proc-%d", i)
		procs[i] = cs.start(id, id)
	}
	flow.Wait()
	wait.For(t, time.Minute, "the first 2,000 records", func() bool { return cs.distinct() >= p.total() })
	// The third process may start after the records are read: the stop
	// is made once all three hold leases, so that all three deliver.
	wait.For(t, 30*time.Second, "every process holding a lease", func() bool {
		o := e.owners()
		return o["proc-0"] > 0 && o["proc-1"] > 0 && o["proc-2"] > 0
	})
	if err := procs[0].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, procs[0], 30*time.Second)
	p.put(t, 20, 25)
	wait.For(t, time.Minute, "every record", func() bool { return cs.distinct() >= p.total() })
	seen := map[string]bool{}
	dups := 0
	for _, d := range cs.snapshot() {
		if seen[d.id()] {
			dups++
		}
		seen[d.id()] = true
	}
	if dups > 0 || len(seen) != p.total() {
		t.Errorf("%d distinct records of %d, %d delivered twice; want each exactly once", len(seen), p.total(), dups)
	}
	workers := map[string]bool{}
	for _, d := range cs.snapshot() {
		workers[d.worker] = true
	}
	if len(workers) != 3 {
		t.Errorf("records from %d processes, want 3", len(workers))
	}
}

// TestIntegrationMultiProcessDuplicateWorkerID: a second process started
// with the WorkerID of one still running (a restart whose predecessor has
// not stopped, on a host-name or pod-name WorkerID) takes the leases it
// finds under that ID. The first process loses each within one renew
// interval of the take, as the counter moved without a write of its own,
// and checkpoints nothing afterwards: every checkpoint of the second
// succeeds, and the table ends at the second's.
func TestIntegrationMultiProcessDuplicateWorkerID(t *testing.T) {
	e := newEnv(t, 2)
	cs := newConsumers(t, e)
	cs.start("host-1", "first")
	wait.For(t, 30*time.Second, "the first process holding both leases", func() bool { return e.owners()["host-1"] == 2 })
	p := &producer{client: e.kinesis, stream: e.stream, pause: 50 * time.Millisecond}
	p.put(t, 20, 5)
	wait.For(t, 60*time.Second, "the first 100 records", func() bool { return cs.distinct() >= p.total() })

	cs.start("host-1", "second")
	p.put(t, 20, 20) // about 1s of records, while both processes run
	shards := map[string]bool{}
	for _, l := range e.leases() {
		shards[l.Key] = true
	}
	renew := e.failover / 3 // the RenewInterval the processes use (FailoverTime/3)
	wait.For(t, 30*time.Second, "the first process to lose both leases", func() bool {
		return len(cs.find("first", "lost", "")) == len(shards)
	})
	for shard := range shards {
		took, lost := cs.find("second", "init", shard), cs.find("first", "lost", shard)
		if len(took) == 0 || len(lost) == 0 {
			t.Fatalf("%s: taken %d times by the second process, lost %d times by the first", shard, len(took), len(lost))
		}
		after := lost[0].at.Sub(took[0].at)
		t.Logf("%s: the first process lost it %v after the second took it (RenewInterval %v)", shard, after, renew)
		// Read from two pipes: allow for scheduling on top of the interval.
		if after > renew+time.Second {
			t.Errorf("%s: the first process lost the lease %v after the second took it, want within a renew interval (%v)", shard, after, renew)
		}
	}
	p.put(t, 20, 5)
	wait.For(t, 60*time.Second, "every record", func() bool { return cs.distinct() >= p.total() })
	if n := cs.distinct(); n != p.total() {
		t.Errorf("%d distinct records, want %d", n, p.total())
	}
	for shard := range shards {
		lost := cs.find("first", "lost", shard)
		if len(lost) != 1 {
			t.Errorf("%s: the first process lost the lease %d times, want once", shard, len(lost))
		}
		if n := len(cs.find("second", "lost", shard)); n > 0 {
			t.Errorf("%s: the second process lost the lease %d times, want never", shard, n)
		}
	}
	var last map[string]string // shard -> the second's last checkpoint
	wait.For(t, 30*time.Second, "the table at the second process's last checkpoints", func() bool {
		last = map[string]string{}
		for _, ev := range cs.find("second", "checkpoint", "") {
			if ev.fields[4] != "ok" {
				t.Fatalf("a checkpoint of the second process: %v", ev.fields)
			}
			last[ev.fields[2]] = ev.fields[3]
		}
		for _, l := range e.leases() {
			if l.Checkpoint+"/"+strconv.FormatUint(l.CheckpointSubSequence, 10) != last[l.Key] {
				return false
			}
		}
		return true
	})
	// The first process's checkpoints after its loss were refused.
	for _, ev := range cs.find("first", "checkpoint", "") {
		if lost := cs.find("first", "lost", ev.fields[2]); len(lost) > 0 && ev.at.After(lost[0].at) && ev.fields[4] == "ok" {
			t.Errorf("the first process checkpointed %v after losing the lease", ev.fields)
		}
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
