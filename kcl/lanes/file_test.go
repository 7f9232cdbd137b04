package lanes_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kcl/lanes"
)

func failure(n, size int) *lanes.Failure {
	f := &lanes.Failure{ShardID: "shardId-000000000001", Lane: 3, Reason: lanes.RetriesExhausted, Attempts: 4, Err: context.DeadlineExceeded}
	for i := range n {
		f.Records = append(f.Records, kcl.Record{
			ShardID: f.ShardID, SequenceNumber: "49680000000000000000000000000000000000000000000000000" + strconv.Itoa(100+i),
			SubSequenceNumber: uint64(i), PartitionKey: "key-" + strconv.Itoa(i), Data: bytes.Repeat([]byte{byte(i)}, size),
			ApproximateArrivalTimestamp: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		})
	}
	return f
}

// OpenFile cuts a partial last line (a write killed midway); Send then
// appends whole envelopes, with the failure's metadata and the records'
// data.
func TestFileDestinationTruncatesPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	d, err := lanes.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), failure(2, 10)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(bytes.Clone(whole), `{"shardId":"shardId-0000`...), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err = lanes.OpenFile(path); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, whole) {
		t.Fatalf("after OpenFile the file is %q, want the whole lines %q", got, whole)
	}
	f := failure(3, 5)
	if err := d.Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	envs := readEnvelopes(t, path)
	if len(envs) != 5 {
		t.Fatalf("%d envelopes, want 5", len(envs))
	}
	for i, env := range envs[2:] {
		r := f.Records[i]
		if env.ShardID != f.ShardID || env.Lane != 3 || env.Reason != lanes.RetriesExhausted || env.Attempts != 4 ||
			env.LastError != context.DeadlineExceeded.Error() || env.FirstSequenceNumber != f.First().SequenceNumber ||
			env.LastSequenceNumber != f.Last().SequenceNumber || env.LastSubSequenceNumber != 2 ||
			env.Record.SequenceNumber != r.SequenceNumber || env.Record.SubSequenceNumber != r.SubSequenceNumber ||
			env.Record.PartitionKey != r.PartitionKey || !bytes.Equal(env.Record.Data, r.Data) || env.Record.DataLength != 5 ||
			!env.Record.ApproximateArrivalTimestamp.Equal(r.ApproximateArrivalTimestamp) {
			t.Errorf("envelope %d: %+v, want the metadata of %+v", i, env, r)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), f); err == nil {
		t.Error("Send after Close succeeded")
	}
}

// A process killed with SIGKILL while it appends large failures leaves a
// file that OpenFile turns into whole lines only.
func TestFileDestinationKilledWriter(t *testing.T) {
	if path := os.Getenv("LANES_FILE_WRITER"); path != "" {
		writeUntilKilled(path)
		return
	}
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileDestinationKilledWriter$")
	cmd.Env = append(os.Environ(), "LANES_FILE_WRITER="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "the writer to write 8 MB", func() bool {
		st, err := os.Stat(path)
		return err == nil && st.Size() > 8<<20
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := lanes.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	envs := readEnvelopes(t, path) // fails on a partial line
	t.Logf("killed writer left %d bytes, %d after OpenFile: %d whole lines", before.Size(), after.Size(), len(envs))
	if len(envs) == 0 {
		t.Fatal("no line survived")
	}
}

// writeUntilKilled appends failures of 100 records of 10 KiB (1.4 MB per
// write) to path until the process is killed.
func writeUntilKilled(path string) {
	d, err := lanes.OpenFile(path)
	if err != nil {
		os.Exit(2)
	}
	f := failure(100, 10<<10)
	for {
		if err := d.Send(context.Background(), f); err != nil {
			os.Exit(3)
		}
	}
}
