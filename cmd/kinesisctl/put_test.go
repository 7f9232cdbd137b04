package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kinesisgo/kinesis/integration/testenv"
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
