package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// Two consumer processes share a stream: between them they write every
// record at least once, to files only their owner can read, and both stop
// cleanly on SIGTERM.
func TestTwoProcesses(t *testing.T) {
	ep := testenv.Require(t)
	client, stream := testenv.NewStream(t, 2)
	_, table := testenv.NewTableName(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "consumer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_ENDPOINT_URL_KINESIS="+ep.Kinesis, "AWS_ENDPOINT_URL_DYNAMODB="+ep.DynamoDB,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local")
	var procs []*exec.Cmd
	for i := range 2 {
		cmd := exec.Command(bin, "-stream", stream, "-app", table, "-failover", "3s",
			"-worker-id", fmt.Sprint("w", i), "-out", filepath.Join(dir, fmt.Sprint("out", i)),
			"-status", filepath.Join(dir, fmt.Sprint("status", i)))
		cmd.Env = env
		logf, err := os.Create(filepath.Join(dir, fmt.Sprint("log", i)))
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("%s", b)
			}
		})
	}

	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var entries []kintypes.PutRecordsRequestEntry
	for i := range n {
		entries = append(entries, kintypes.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("key-", i%37)), Data: []byte(fmt.Sprintf("record-%04d\n", i))})
	}
	for len(entries) > 0 {
		k := min(len(entries), 100)
		out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries[:k]})
		if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
			t.Fatalf("PutRecords: %v", err)
		}
		entries = entries[k:]
	}

	read := func() map[string]int {
		seen := map[string]int{}
		for i := range 2 {
			b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprint("out", i)))
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l != "" {
					seen[l]++
				}
			}
		}
		return seen
	}
	if !wait.Until(time.Minute, func() bool { return len(read()) >= n }) {
		b0, _ := os.ReadFile(filepath.Join(dir, "log0"))
		t.Fatalf("consumed %d of %d records within a minute; worker log:\n%s", len(read()), n, b0)
	}
	// The files hold the payloads: readable by their owner only.
	for i := range 2 {
		fi, err := os.Stat(filepath.Join(dir, fmt.Sprint("out", i)))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("output file of worker %d has mode %v, want -rw-------", i, perm)
		}
	}
	dups := 0
	for _, c := range read() {
		dups += c - 1
	}
	// A lease that moves while its batch is processed (the second worker
	// balancing the first) has that batch processed again: at least once.
	t.Logf("%d records, %d duplicates", n, dups)
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range procs {
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker %d after SIGTERM: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("worker %d did not stop within 30s of SIGTERM", i)
		}
	}
	if s, err := os.ReadFile(filepath.Join(dir, "status0")); err != nil || !strings.Contains(string(s), `"worker":"w0"`) {
		t.Errorf("status file: %s %v", s, err)
	}
}
