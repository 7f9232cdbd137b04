package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// TestSymlinkOutOfTheDirectory runs two flows whose directories each hold a
// symbolic link to a file elsewhere: the flow without followSymlinks does
// not ship that file's lines and counts the path as refused; the flow with
// "followSymlinks": true ships them.
func TestSymlinkOutOfTheDirectory(t *testing.T) {
	client, stream := testenv.NewStream(t, 1)
	ep := testenv.Require(t)
	bin := buildAgent(t)
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	guarded, following := filepath.Join(root, "guarded"), filepath.Join(root, "following")
	for _, d := range []string{outside, guarded, following} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret")
	appendLines(t, secret, numbered("secret", 0, 10))
	for _, d := range []string{guarded, following} {
		if err := os.Symlink(secret, filepath.Join(d, "linked.log")); err != nil {
			t.Fatal(err)
		}
	}
	guardedFlow := map[string]any{"filePattern": filepath.Join(guarded, "*.log"), "kinesisStream": stream,
		"initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 100}
	followingFlow := map[string]any{"filePattern": filepath.Join(following, "*.log"), "kinesisStream": stream,
		"initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 100, "followSymlinks": true}
	cfg := writeConfig(t, map[string]any{"checkpointFile": filepath.Join(root, "cp.json"), "metrics.listen": "127.0.0.1:0",
		"flows": []any{guardedFlow, followingFlow}})
	p := startAgentProcess(t, bin, cfg, "AWS_ENDPOINT_URL_KINESIS="+ep.Kinesis)

	guardedID := stream + ":" + guardedFlow["filePattern"].(string)
	wait.For(t, 20*time.Second, "the guarded flow to refuse the link", func() bool {
		v, _ := p.metric("files_refused_total", guardedID)
		return v == 1
	})
	// Lines in a plain file of the guarded directory, written after the
	// refusal, arrive; the secret arrives once, through the following flow.
	appendLines(t, filepath.Join(guarded, "app.log"), numbered("app", 0, 10))
	r := newReader(t, client, stream)
	r.waitAll(append(numbered("app", 0, 10), numbered("secret", 0, 10)...), 30*time.Second)
	for _, l := range numbered("secret", 0, 10) {
		if n := r.counts[l]; n != 1 {
			t.Errorf("%q read %d times, want once (through the following flow only)", strings.TrimSpace(l), n)
		}
	}
	if v, _ := p.metric("files_refused_total", stream+":"+followingFlow["filePattern"].(string)); v != 0 {
		t.Errorf("following flow: files_refused_total %v, want 0", v)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// TestTruncatedWhileStoppedIsReadAgain stops the agent, truncates its file
// and writes it again with the same first kilobyte (the fingerprint) but
// shorter than the saved offset: at the next start the whole file is read
// again from offset 0.
func TestTruncatedWhileStoppedIsReadAgain(t *testing.T) {
	client, stream := testenv.NewStream(t, 1)
	ep := testenv.Require(t)
	bin := buildAgent(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	first := numbered("trunc", 0, 200) // 13 bytes a line: 2,600 bytes
	appendLines(t, logPath, first)
	cfg := writeConfig(t, map[string]any{"checkpointFile": filepath.Join(dir, "cp.json"),
		"flows": []any{map[string]any{"filePattern": logPath, "kinesisStream": stream, "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 100}}})
	env := "AWS_ENDPOINT_URL_KINESIS=" + ep.Kinesis
	p := startAgentProcess(t, bin, cfg, env)
	r := newReader(t, client, stream)
	r.waitAll(first, 30*time.Second)
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// The first 100 lines again (1,300 bytes, the same first kilobyte),
	// then 10 new ones: 1,430 bytes, less than the 2,600 saved.
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	again := append(numbered("trunc", 0, 100), numbered("after", 0, 10)...)
	appendLines(t, logPath, again)
	p = startAgentProcess(t, bin, cfg, env)
	r.waitAll(numbered("after", 0, 10), 30*time.Second)
	for _, l := range first[:100] {
		if n := r.counts[l]; n != 2 {
			t.Fatalf("%q read %d times, want twice (the file read again from 0)", strings.TrimSpace(l), n)
		}
	}
	if !strings.Contains(p.log(), "shorter than its saved offset") {
		t.Error("the truncation was not logged")
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}
