package tail

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kinesisgo/kinesis/internal/wait"
)

// A file truncated while the tailer was stopped and refilled with the same
// first bytes, shorter than its saved offset, is read again from 0.
func TestTruncatedWhileStoppedIsReadAgain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newWriter(t, path)
	w.write(200)
	c := startTail(t, Config{Pattern: path}, true)
	c.waitLines(200)
	c.stop()
	_, evs := c.snapshot()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	pos := Position{Path: path, ID: evs[len(evs)-1].ID, Offset: fi.Size()}
	if pos.ID.FingerprintSize != 1024 {
		t.Fatalf("fingerprint of %d bytes, want 1024", pos.ID.FingerprintSize)
	}

	// Truncated and refilled while stopped: the same first lines (the same
	// fingerprint), then new ones, shorter than the saved offset.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	w.n = 0
	w.write(60)
	if fi, err := os.Stat(path); err != nil || fi.Size() >= pos.Offset || fi.Size() < 1024 {
		t.Fatalf("refilled file: %v, %v; want 1024 to %d bytes", fi.Size(), err, pos.Offset)
	}

	core, logs := observer.New(zapcore.InfoLevel)
	c2 := startTail(t, Config{Pattern: path, Resume: []Position{pos}, Logger: zap.New(core)}, true)
	checkAll(t, c2.waitLines(60), 60)
	found := logs.FilterMessageSnippet("shorter than its saved offset").FilterField(zap.String("path", path))
	if found.Len() != 1 {
		t.Errorf("want one log line about the truncation, got %v", logs.All())
	}
}

// A saved position with a negative offset or fingerprint size is refused.
func TestNewRejectsInvalidResume(t *testing.T) {
	for _, p := range []Position{
		{Path: "/x/a.log", Offset: -1},
		{Path: "/x/a.log", ID: Identity{FingerprintSize: -3}},
	} {
		if _, err := New(Config{Pattern: "/x/*.log", Resume: []Position{p}}); err == nil {
			t.Errorf("%+v: want an error", p)
		}
	}
}

// A symlink in the watched directory to a file elsewhere is not followed
// (logged once, counted); one to a file in the directory is; with
// FollowSymlinks both are.
func TestSymlinkLeavingTheDirectoryIsRefused(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("root:secret-hash:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, follow := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "FollowSymlinks"}[follow], func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Symlink(outside, filepath.Join(dir, "shadow.log")); err != nil {
				t.Fatal(err)
			}
			w := newWriter(t, filepath.Join(dir, "app.log"))
			w.write(3)
			if err := os.Symlink("app.log", filepath.Join(dir, "current.log")); err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zapcore.InfoLevel)
			var refused atomic.Int64
			c := startTail(t, Config{Pattern: filepath.Join(dir, "*.log"), FollowSymlinks: follow, Logger: zap.New(core),
				OnRefused: func() { refused.Add(1) }}, false)
			if follow {
				got := c.waitLines(4)
				if !strings.Contains(strings.Join(got, "\n"), "secret-hash") {
					t.Fatalf("with FollowSymlinks the link's target is read: %q", got)
				}
				return
			}
			checkAll(t, c.waitLines(3), 3)
			wait.For(t, 5*time.Second, "the refusal logged", func() bool {
				return logs.FilterMessageSnippet("leaves the directory").Len() > 0
			})
			// Later scans neither read it nor log it again.
			time.Sleep(300 * time.Millisecond) // several polls: nothing must happen in them
			w.write(1)
			got := c.waitLines(4)
			checkAll(t, got, 4)
			if n := logs.FilterMessageSnippet("leaves the directory").FilterField(zap.String("path", filepath.Join(dir, "shadow.log"))).Len(); n != 1 {
				t.Errorf("refusal logged %d times, want once: %v", n, logs.All())
			}
			if n := refused.Load(); n != 1 {
				t.Errorf("OnRefused called %d times, want 1", n)
			}
			for _, s := range c.tl.Status() {
				if strings.HasSuffix(s.Path, "shadow.log") {
					t.Errorf("the link is followed: %+v", s)
				}
			}
		})
	}
}
