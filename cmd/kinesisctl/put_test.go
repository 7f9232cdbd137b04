package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

func TestPutThenTail(t *testing.T) {
	t.Parallel()
	_, stream := testenv.NewStream(t, 2)

	var in strings.Builder
	var want []string
	for i := range 400 {
		l := fmt.Sprintf("stdin line %03d", i)
		want = append(want, l)
		in.WriteString(l + "\n")
	}
	in.WriteString("\n")                    // an empty line is an empty record
	in.WriteString("last line, no newline") // still a record
	want = append(want, "", "last line, no newline")

	r := kctlIn(t, in.String(), "put", stream, "--json")
	if r.code != 0 {
		t.Fatalf("put: exit %d: %s", r.code, r.stderr)
	}
	sum := decode[putSummary](t, r)
	if sum.Records != 402 || sum.Written != 402 || sum.Failed != 0 {
		t.Fatalf("put summary: %+v", sum)
	}
	if sum.KinesisRecords >= 402 || sum.KinesisRecords < 2 {
		t.Errorf("put wrote %d Kinesis records for 402 lines: want them aggregated", sum.KinesisRecords)
	}
	if len(sum.Shards) != 2 || sum.Shards["shardId-000000000000"]+sum.Shards["shardId-000000000001"] != 402 {
		t.Errorf("per-shard counts: %v", sum.Shards)
	}

	// Files, with one partition key and aggregation off.
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	os.WriteFile(f1, []byte("file a 1\nfile a 2\n"), 0o644)
	os.WriteFile(f2, []byte("file b 1\n"), 0o644)
	sum = decode[putSummary](t, mustRun(t, "put", stream, f1, f2, "--partition-key", "k", "--no-aggregation", "--json"))
	if sum.Written != 3 || sum.KinesisRecords != 3 || len(sum.Shards) != 1 {
		t.Errorf("put of files: %+v", sum)
	}
	want = append(want, "file a 1", "file a 2", "file b 1")

	human := mustRun(t, "put", stream, f2).stdout
	if !strings.Contains(human, "1 written, 0 failed") {
		t.Errorf("put summary:\n%s", human)
	}
	want = append(want, "file b 1")

	got := strings.Split(strings.TrimSuffix(mustRun(t, "tail", stream).stdout, "\n"), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tail after put: got %d lines, want %d", len(got), len(want))
	}

	wantExit(t, kctl(t, "put", stream, filepath.Join(dir, "missing.log")), exitUsage, "missing.log")
	wantExit(t, kctlIn(t, "x\n", "put", stream+"-missing"), exitNotFound, "not found")
	wantExit(t, kctl(t, "put"), exitUsage, "STREAM")
	wantExit(t, kctl(t, "put", stream, "--partition-key", strings.Repeat("k", 257)), exitUsage, "--partition-key")
}

// A record the producer rejects fails alone: the others are written and
// the exit code says the put is incomplete.
func TestPutIncomplete(t *testing.T) {
	t.Parallel()
	_, stream := testenv.NewStream(t, 1)
	big := strings.Repeat("x", 1<<20+1) // over the 1 MiB record limit
	r := kctlIn(t, "small\n"+big+"\nsmall again\n", "put", stream, "--json")
	wantExit(t, r, exitIncomplete, "1 of 3 records were not written", "standard input:2")
	sum := decode[putSummary](t, r)
	if sum.Written != 2 || sum.Failed != 1 || len(sum.Errors) != 1 {
		t.Errorf("summary: %+v", sum)
	}
}

// An interrupted put waiting for input ends at once with exit 130, having
// written what it had read: while blocked opening a FIFO no writer has
// opened yet, and while blocked reading a pipe whose writer is slow.
func TestPutInterruptedWhileWaitingForInput(t *testing.T) {
	t.Parallel()
	client, stream := testenv.NewStream(t, 1)
	bin := buildKinesisctl(t)
	dir := t.TempDir()

	// received counts the records in the stream.
	received := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: aws.String("shardId-000000000000"), ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			return -1
		}
		out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			return -1
		}
		return len(out.Records)
	}

	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		prefix string // a regular file read before the FIFO
		lines  string // written to the FIFO by a writer that then stays
		total  int    // records received before the signal, counting earlier cases
		read   int64  // lines this run read
	}{
		{name: "FIFO without writer", sig: syscall.SIGINT, prefix: "first\n", total: 1, read: 1},
		{name: "slow pipe", sig: syscall.SIGTERM, lines: "a\nb\n", total: 3, read: 2},
	} {
		fifo := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"put", stream, "--no-aggregation", "--json"}
		if tc.prefix != "" {
			prefix := fifo + ".txt"
			if err := os.WriteFile(prefix, []byte(tc.prefix), 0o600); err != nil {
				t.Fatal(err)
			}
			args = append(args, prefix)
		}
		cmd := exec.Command(bin, append(args, fifo)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		if tc.lines != "" {
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // blocks until put opens it
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close() // the writer stays until the end
			if _, err := w.WriteString(tc.lines); err != nil {
				t.Fatal(err)
			}
		}
		// The lines read are written: put is now waiting for more input.
		wait.For(t, 30*time.Second, fmt.Sprintf("%s: %d records in the stream", tc.name, tc.total),
			func() bool { return received() >= tc.total })
		if err := cmd.Process.Signal(tc.sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s: put did not end within 20s of %v", tc.name, tc.sig)
		}
		if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
			t.Fatalf("%s: exit %d after %v, want %d; stderr:\n%s", tc.name, code, tc.sig, exitInterrupted, stderr.String())
		}
		var sum putSummary
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatalf("%s: summary: %v\n%s", tc.name, err, stdout.String())
		}
		if sum.Records != tc.read || sum.Written != tc.read || sum.Failed != 0 {
			t.Errorf("%s: summary %+v, want %d read and written", tc.name, sum, tc.read)
		}
		if !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("%s: stderr does not say it was interrupted:\n%s", tc.name, stderr.String())
		}
	}
}
