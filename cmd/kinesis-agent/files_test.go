package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
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

// TestRefusesUnwritableCheckpoints starts the agent where it cannot save
// its offsets: it must refuse to start, naming the checkpoint file, rather
// than ship and send everything again at every restart. Run as root, the
// test runs the agent as the user nobody, for whom permissions hold.
func TestRefusesUnwritableCheckpoints(t *testing.T) {
	bin := buildAgent(t)
	asRoot := os.Geteuid() == 0
	for _, tc := range []struct {
		name     string
		rootOnly bool
		prepare  func(t *testing.T, state string) // makes state unusable; the file is state/cp.json
	}{
		{"read-only directory", false, func(t *testing.T, state string) {
			if err := os.Chmod(state, 0o555); err != nil {
				t.Fatal(err)
			}
		}},
		// The file belongs to root in a world-writable sticky directory
		// (as /tmp): it cannot be replaced by another user.
		{"file of another user in a sticky directory", true, func(t *testing.T, state string) {
			if err := os.WriteFile(filepath.Join(state, "cp.json"), []byte(`{"version":1,"flows":{}}`), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(state, os.ModeSticky|0o777); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rootOnly && !asRoot {
				t.Skip("needs a file of another user")
			}
			// A tree the user nobody can read and run from.
			root, err := os.MkdirTemp("", "kinesis-agent-cp")
			if err != nil {
				t.Fatal(err)
			}
			state := filepath.Join(root, "state")
			t.Cleanup(func() {
				_ = os.Chmod(state, 0o700)
				_ = os.RemoveAll(root)
			})
			if err := os.Chmod(root, 0o755); err != nil {
				t.Fatal(err)
			}
			exe := filepath.Join(root, "kinesis-agent")
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(exe, b, 0o755); err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(root, "app.log")
			if err := os.WriteFile(logPath, []byte("line\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(state, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, state)
			cfg := filepath.Join(root, "agent.json")
			conf := `{"checkpointFile":"` + filepath.Join(state, "cp.json") + `","kinesis.endpoint":"http://127.0.0.1:1",` +
				`"flows":[{"filePattern":"` + logPath + `","kinesisStream":"s","initialPosition":"START_OF_FILE"}]}`
			if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "-config", cfg)
			cmd.Env = []string{"HOME=" + root, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
				"AWS_CONFIG_FILE=" + filepath.Join(root, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(root, "none")}
			if asRoot {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			}
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the agent ran on with offsets it cannot save; output:\n%s", out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1; output:\n%s", err, out)
			}
			for _, want := range []string{"every restart would send the files again", filepath.Join(state, "cp.json") + " cannot be written"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
