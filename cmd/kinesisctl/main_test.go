package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/testenv"
)

// result is what one kinesisctl run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// kctl runs kinesisctl in-process with args and an empty stdin.
func kctl(t *testing.T, args ...string) result {
	t.Helper()
	return kctlIn(t, "", args...)
}

// kctlIn runs kinesisctl in-process with args, stdin as its input.
func kctlIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustRun runs kinesisctl and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := kctl(t, args...)
	if r.code != 0 {
		t.Fatalf("kinesisctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// wantExit checks the exit code and that stderr mentions each of hints.
func wantExit(t *testing.T, r result, code int, hints ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, h := range hints {
		if !strings.Contains(r.stderr, h) {
			t.Errorf("stderr does not mention %q:\n%s", h, r.stderr)
		}
	}
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not the expected JSON: %v\n%s", err, r.stdout)
	}
	return v
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		hint string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"unknown flag", []string{"stream", "list", "--bogus"}, "unknown flag"},
		{"missing argument", []string{"shards"}, "STREAM"},
		{"extra argument", []string{"stream", "describe", "a", "b"}, "STREAM"},
		{"bad shard count", []string{"scale", "s", "two"}, "bad shard count"},
		{"zero shard count", []string{"scale", "s", "0"}, "bad shard count"},
		{"bad shard ID", []string{"split", "s", "shard-7"}, "bad shard ID"},
		{"bad hash key", []string{"split", "s", "0", "--at", "-5"}, "bad --at"},
		{"merge with itself", []string{"merge", "s", "1", "shardId-000000000001"}, "itself"},
		{"zero shards", []string{"stream", "create", "s", "--shards", "0"}, "--shards"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kctl(t, tc.args...)
			wantExit(t, r, exitUsage, tc.hint, "--help")
		})
	}
}

func TestHelp(t *testing.T) {
	r := kctl(t, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Exit codes") || !strings.Contains(r.stdout, "split") {
		t.Fatalf("--help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestParseShardID(t *testing.T) {
	for in, want := range map[string]string{
		"3":                    "shardId-000000000003",
		"0":                    "shardId-000000000000",
		"shardId-000000000012": "shardId-000000000012",
	} {
		got, err := parseShardID(in)
		if err != nil || got != want {
			t.Errorf("parseShardID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "shardId-1", "-1", "shardId-00000000000x", "1000000000000", "abc"} {
		if got, err := parseShardID(in); err == nil {
			t.Errorf("parseShardID(%q) = %q, want an error", in, got)
		}
	}
}

func TestStreamLifecycle(t *testing.T) {
	t.Parallel()
	client := testenv.KinesisClient(t)
	name := testenv.UniqueName(t)
	t.Cleanup(func() { kctl(t, "stream", "delete", name) })

	created := decode[streamInfo](t, mustRun(t, "stream", "create", name, "--shards", "2", "--json"))
	if created.Name != name || created.Status != "ACTIVE" || created.OpenShards == nil || *created.OpenShards != 2 {
		t.Fatalf("create: got %+v, want %s ACTIVE with 2 open shards", created, name)
	}

	info := decode[streamInfo](t, mustRun(t, "stream", "describe", name, "--json"))
	if info.Status != "ACTIVE" || *info.OpenShards != 2 || info.ARN == "" || *info.RetentionHours != 24 {
		t.Errorf("describe: got %+v", info)
	}
	human := mustRun(t, "stream", "describe", name).stdout
	if !strings.Contains(human, "Open shards") || !strings.Contains(human, name) {
		t.Errorf("describe table lacks the stream:\n%s", human)
	}

	list := decode[[]streamInfo](t, mustRun(t, "stream", "list", "--json"))
	found := false
	for _, s := range list {
		found = found || s.Name == name
	}
	if !found {
		t.Errorf("stream list --json does not include %s: %+v", name, list)
	}
	if !strings.Contains(mustRun(t, "stream", "list").stdout, name) {
		t.Errorf("stream list does not include %s", name)
	}

	wantExit(t, kctl(t, "stream", "create", name), exitConflict, "already exists")

	r := decode[map[string]any](t, mustRun(t, "stream", "delete", name, "--json"))
	if r["deleted"] != true || r["name"] != name {
		t.Errorf("delete --json: %v", r)
	}
	wantExit(t, kctl(t, "stream", "describe", name), exitNotFound, name, "kinesisctl stream list")
	if _, err := describeStream(context.Background(), client, name); err == nil {
		t.Errorf("stream %s still exists after delete", name)
	}
}

func TestUnknownStream(t *testing.T) {
	t.Parallel()
	testenv.Require(t)
	name := testenv.UniqueName(t)
	for _, args := range [][]string{
		{"stream", "describe", name},
		{"stream", "delete", name},
		{"shards", name},
		{"split", name, "0"},
		{"merge", name, "0", "1"},
		{"scale", name, "2"},
	} {
		wantExit(t, kctl(t, args...), exitNotFound, name)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	t.Parallel()
	ep := "http://" + closedPort(t)
	for _, args := range [][]string{{"stream", "list"}, {"tail", "s"}, {"leases", "app"}} {
		r := kctl(t, append([]string{"--endpoint-url", ep}, args...)...)
		wantExit(t, r, exitUnreachable, "cannot reach "+ep, "connection refused")
	}
}

func TestNoCredentials(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "eu-west-1")

	// A remote endpoint: no dummy credentials, so the missing ones are reported.
	r := kctl(t, "--endpoint-url", "https://kinesis.eu-west-1.amazonaws.com", "stream", "list")
	wantExit(t, r, exitConfig, "no AWS credentials", "aws configure")

	r = kctl(t, "--endpoint-url", "https://kinesis.eu-west-1.amazonaws.com", "--profile", "nosuchprofile", "stream", "list")
	wantExit(t, r, exitConfig, "nosuchprofile")

	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	r = kctl(t, "--endpoint-url", "https://kinesis.eu-west-1.amazonaws.com", "stream", "list")
	wantExit(t, r, exitConfig, "no AWS region", "--region")

	// A local endpoint with nothing configured works with dummy credentials.
	ep := testenv.Require(t).Kinesis
	if !isLocal(ep) {
		t.Skipf("Kinesis endpoint %s is not local", ep)
	}
	mustRun(t, "--endpoint-url", ep, "stream", "list")
}

// The binary behaves as the in-process runs: output on stdout, errors on
// stderr, and the documented exit codes.
func TestBinary(t *testing.T) {
	t.Parallel()
	_, stream := testenv.NewStream(t, 1)
	bin := buildKinesisctl(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	out, err := exec.CommandContext(ctx, bin, "shards", stream, "--json").Output()
	if err != nil {
		t.Fatalf("kinesisctl shards: %v", err)
	}
	var shards []shardInfo
	if err := json.Unmarshal(out, &shards); err != nil || len(shards) != 1 || shards[0].State != "open" {
		t.Fatalf("shards --json: %v %s", err, out)
	}

	cmd := exec.CommandContext(ctx, bin, "stream", "describe", stream+"-missing")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitNotFound {
		t.Fatalf("describe of a missing stream: exit %d (%v), want %d; stderr: %s", code, err, exitNotFound, stderr.String())
	}
	if !strings.HasPrefix(stderr.String(), "kinesisctl: stream ") {
		t.Errorf("stderr: %q", stderr.String())
	}
}

// buildKinesisctl builds the command into the test's temporary directory.
func buildKinesisctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kinesisctl")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
