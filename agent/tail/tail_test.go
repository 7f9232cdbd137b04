package tail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kinesisgo/kinesis/internal/wait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collector runs a tailer and turns its events into lines, checking that
// data arrives contiguously per file.
type collector struct {
	t      *testing.T
	mu     sync.Mutex
	lines  []string
	events []Event // without data
	errs   []string
	tl     *Tailer
	cancel context.CancelFunc
	done   chan struct{}
}

func startTail(t *testing.T, cfg Config, noNotify bool) *collector {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.CloseInactive == 0 {
		cfg.CloseInactive = 200 * time.Millisecond
	}
	if cfg.ReadSize == 0 {
		cfg.ReadSize = 256 // many small reads: more interleavings
	}
	tl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tl.noNotify = noNotify
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{t: t, tl: tl, cancel: cancel, done: make(chan struct{})}
	ch := make(chan Event)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.consume(ch)
	}()
	go func() {
		_ = tl.Run(ctx, ch)
		close(ch)
		wg.Wait()
		close(c.done)
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *collector) stop() {
	c.cancel()
	<-c.done
}

func (c *collector) consume(ch <-chan Event) {
	next := map[*File]int64{}
	partial := map[*File][]byte{}
	for ev := range ch {
		c.mu.Lock()
		switch ev.Kind {
		case Open:
			next[ev.File] = ev.Offset
		case Reset:
			next[ev.File] = 0
			partial[ev.File] = nil
		case Data:
			if ev.Offset != next[ev.File] {
				c.errs = append(c.errs, fmt.Sprintf("%s: data at %d, want %d", ev.Path, ev.Offset, next[ev.File]))
			}
			next[ev.File] = ev.Offset + int64(len(ev.Data))
			buf := append(partial[ev.File], ev.Data...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				c.lines = append(c.lines, string(buf[:i]))
				buf = buf[i+1:]
			}
			partial[ev.File] = append([]byte(nil), buf...)
		}
		ev.Data = nil
		c.events = append(c.events, ev)
		c.mu.Unlock()
	}
}

func (c *collector) snapshot() ([]string, []Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		c.t.Errorf("contiguity: %v", c.errs)
		c.errs = nil
	}
	return append([]string(nil), c.lines...), append([]Event(nil), c.events...)
}

func (c *collector) waitLines(n int) []string {
	c.t.Helper()
	var got []string
	wait.For(c.t, 10*time.Second, fmt.Sprintf("%d lines", n), func() bool {
		got, _ = c.snapshot()
		return len(got) >= n
	})
	return got
}

func (c *collector) waitOpens(n int) {
	c.t.Helper()
	wait.For(c.t, 10*time.Second, fmt.Sprintf("%d files opened", n), func() bool {
		_, evs := c.snapshot()
		opens := 0
		for _, ev := range evs {
			if ev.Kind == Open {
				opens++
			}
		}
		return opens >= n
	})
}

func line(i int) string { return fmt.Sprintf("line %06d %s", i, strings.Repeat("x", i%37)) }

// writer appends numbered lines to a path, reopening it on demand.
type writer struct {
	t    *testing.T
	path string
	f    *os.File
	n    int
}

func newWriter(t *testing.T, path string) *writer {
	w := &writer{t: t, path: path}
	w.reopen()
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *writer) reopen() {
	if w.f != nil {
		w.f.Close()
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

func (w *writer) write(k int) {
	var b bytes.Buffer
	for range k {
		b.WriteString(line(w.n) + "\n")
		w.n++
	}
	if _, err := w.f.Write(b.Bytes()); err != nil {
		w.t.Fatal(err)
	}
}

// checkAll asserts that got holds lines 0..n-1, each once, in order.
func checkAll(t *testing.T, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Errorf("got %d lines, want %d", len(got), n)
	}
	for i := 0; i < min(n, len(got)); i++ {
		if got[i] != line(i) {
			t.Fatalf("line %d = %q, want %q", i, got[i], line(i))
		}
	}
}

func TestRenameRotationWithRacingWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newWriter(t, path)
	c := startTail(t, Config{Pattern: path}, false)
	for r := 0; r < 3; r++ {
		// With a pattern that matches only the live name, a file renamed
		// away before the tailer ever saw it cannot be found: wait for it.
		c.waitOpens(r + 1)
		w.write(200)
		// logrotate "create": rename, then the application keeps writing to
		// its open descriptor until told to reopen.
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r+1)); err != nil {
			t.Fatal(err)
		}
		w.write(50)
		w.reopen()
		w.write(100)
	}
	checkAll(t, c.waitLines(w.n), w.n)
	// The rotated files are closed once quiet.
	wait.For(t, 5*time.Second, "rotated files closed", func() bool {
		_, evs := c.snapshot()
		closes := 0
		for _, ev := range evs {
			if ev.Kind == Close {
				closes++
			}
		}
		return closes == 3
	})
}

func TestRenameRotationPatternMatchesRotated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newWriter(t, path)
	c := startTail(t, Config{Pattern: path + "*"}, false)
	for r := 0; r < 3; r++ {
		w.write(300)
		c.waitOpens(r + 1)        // rotations are seconds apart in life, not microseconds
		for k := r; k >= 1; k-- { // app.log.k -> app.log.k+1
			if err := os.Rename(fmt.Sprintf("%s.%d", path, k), fmt.Sprintf("%s.%d", path, k+1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		w.write(20)
		w.reopen()
	}
	w.write(10)
	checkAll(t, c.waitLines(w.n), w.n)
	_, evs := c.snapshot()
	opens := 0
	for _, ev := range evs {
		if ev.Kind == Open {
			opens++
		}
	}
	if opens != 4 {
		t.Errorf("opened %d files, want 4 (renames keep identity)", opens)
	}
}

// copyTruncate rotates like logrotate's copytruncate: copy, then truncate.
func copyTruncate(t *testing.T, path, to string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

func TestCopyTruncateWithRacingWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newWriter(t, path)
	c := startTail(t, Config{Pattern: path + "*"}, false)
	var mu sync.Mutex // held across copy+truncate: writes in between are lost by design
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			w.write(7)
			mu.Unlock()
			time.Sleep(time.Millisecond) // pace the writer, not a wait
		}
	}()
	for r := 1; r <= 3; r++ {
		wait.For(t, 5*time.Second, "file to grow", func() bool {
			fi, err := os.Stat(path)
			return err == nil && fi.Size() > 20_000
		})
		mu.Lock()
		copyTruncate(t, path, fmt.Sprintf("%s.%d", path, r))
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
	checkAll(t, c.waitLines(w.n), w.n)
}

func TestCopyTruncateFoundAfterTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newWriter(t, path)
	w.write(100)
	c := startTail(t, Config{Pattern: path + "*"}, true)
	c.waitLines(100)
	// The tailer polls; stop it from seeing the copy before the truncation
	// by making the copy outside the pattern's directory, then moving it in.
	w.write(50)
	b, _ := os.ReadFile(path)
	tmp := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	w.write(30)
	wait.For(t, 5*time.Second, "reset", func() bool {
		_, evs := c.snapshot()
		for _, ev := range evs {
			if ev.Kind == Reset {
				return true
			}
		}
		return false
	})
	if err := os.Rename(tmp, path+".1"); err != nil {
		t.Fatal(err)
	}
	got := c.waitLines(180)
	// Lines 100..149 come from the copy (after the truncated file's new
	// lines 150..179 here, since the copy appeared late): each line once.
	seen := map[string]int{}
	for _, l := range got {
		seen[l]++
	}
	for i := 0; i < 180; i++ {
		if seen[line(i)] != 1 {
			t.Errorf("line %d seen %d times", i, seen[line(i)])
		}
	}
}

func TestTruncateInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newWriter(t, path)
	w.write(100)
	c := startTail(t, Config{Pattern: path}, false)
	c.waitLines(100)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	w.write(10) // shorter than before
	got := c.waitLines(110)
	checkAll(t, got, 110)
}

func TestTruncateRefilledPastOffsetIsDetected(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	if err := os.WriteFile(path, []byte("old-0 aaaaaaaaaaaaaaaaaaaa\nold-1 aaaaaaaaaaaaaaaaaaa\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startTail(t, Config{Pattern: path}, true)
	c.waitLines(2)
	c.stop() // freeze, rewrite, then look again from the saved position
	_, evs := c.snapshot()
	last := evs[len(evs)-1]
	newContent := "new-0 " + strings.Repeat("b", 100) + "\nnew-1\n"
	if err := os.WriteFile(path, []byte(newContent), 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := startTail(t, Config{Pattern: path, Resume: []Position{{Path: path, ID: last.ID, Offset: last.Offset + 0}}}, true)
	_ = c2
	got := c2.waitLines(2)
	if got[0] != "new-0 "+strings.Repeat("b", 100) || got[1] != "new-1" {
		t.Fatalf("got %q", got)
	}
}

func TestLateCreatedFileAndMissingDirectory(t *testing.T) {
	for _, notify := range []bool{true, false} {
		t.Run(fmt.Sprintf("notify=%v", notify), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "not-yet")
			path := filepath.Join(dir, "late.log")
			c := startTail(t, Config{Pattern: filepath.Join(dir, "*.log"), StartAtEnd: true, PollInterval: 200 * time.Millisecond}, !notify)
			time.Sleep(100 * time.Millisecond) // let a scan of the missing directory happen
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			w := newWriter(t, path)
			w.write(5)
			start := time.Now()
			got := c.waitLines(5) // a late file is read from its start
			if d := time.Since(start); d > time.Second {
				t.Errorf("new file seen after %v, want within 1s", d)
			}
			checkAll(t, got, 5)
		})
	}
}

func TestStartAtEndAndResume(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	wa, wb := newWriter(t, a), newWriter(t, b)
	wa.write(10)
	wb.write(10)
	c := startTail(t, Config{Pattern: a, StartAtEnd: true}, false)
	wait.For(t, 5*time.Second, "open", func() bool { _, evs := c.snapshot(); return len(evs) > 0 })
	wa.write(1)
	got := c.waitLines(1)
	if got[0] != line(10) {
		t.Fatalf("got %q, want only the new line", got)
	}
	_, evs := c.snapshot()
	pos := Position{Path: a, ID: evs[len(evs)-1].ID, Offset: evs[len(evs)-1].Offset + int64(len(line(10))+1)}
	c.stop()

	wa.write(2)
	c2 := startTail(t, Config{Pattern: filepath.Join(dir, "*.log"), StartAtEnd: true, Resume: []Position{pos}}, false)
	got = c2.waitLines(2)
	if len(got) != 2 || got[0] != line(11) || got[1] != line(12) {
		t.Fatalf("resumed: %q", got)
	}
	// b.log had no saved position: it starts at its end.
	wb.write(1)
	got = c2.waitLines(3)
	if got[2] != line(10) {
		t.Fatalf("b: %q", got)
	}
}

func TestReplacedFileIsNotTakenForTheOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := newWriter(t, path)
	w.write(20)
	c := startTail(t, Config{Pattern: path}, false)
	c.waitLines(20)
	_, evs := c.snapshot()
	pos := Position{Path: path, ID: evs[len(evs)-1].ID, Offset: evs[len(evs)-1].Offset + 1000}
	c.stop()
	// Replace the file: a new file with other content, possibly the same inode.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Repeat("replacement line\n", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := startTail(t, Config{Pattern: path, Resume: []Position{pos}}, false)
	got := c2.waitLines(200)
	if got[0] != "replacement line" {
		t.Fatalf("got %q", got[0])
	}
}

func TestCompressedRotationsIgnored(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.log.2.gz"), []byte("\x1f\x8b binary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, filepath.Join(dir, "app.log"))
	w.write(3)
	c := startTail(t, Config{Pattern: filepath.Join(dir, "app.log*")}, false)
	checkAll(t, c.waitLines(3), 3)
	if st := c.tl.Status(); len(st) != 1 || st[0].Size != st[0].Offset {
		t.Errorf("status %+v", st)
	}
}

func TestUnreadableFileRetried(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.log")
	if err := os.WriteFile(path, []byte("hidden\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	c := startTail(t, Config{Pattern: path}, false)
	time.Sleep(150 * time.Millisecond) // a few failing scans
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := c.waitLines(1); got[0] != "hidden" {
		t.Fatal(got)
	}
}

func TestNewFileWithSameHeaderIsNotACopy(t *testing.T) {
	dir := t.TempDir()
	header := "# " + strings.Repeat("h", 300) + "\n"
	a := filepath.Join(dir, "a.csv")
	var b strings.Builder
	b.WriteString(header)
	for i := range 100 {
		b.WriteString(line(i) + "\n")
	}
	if err := os.WriteFile(a, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startTail(t, Config{Pattern: filepath.Join(dir, "*.csv")}, false)
	c.waitLines(101)
	if err := os.WriteFile(filepath.Join(dir, "b.csv"), []byte(header+"other 1\nother 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := c.waitLines(104)
	if got[101] != strings.TrimSuffix(header, "\n") || got[102] != "other 1" || got[103] != "other 2" {
		t.Fatalf("new file read as %q", got[101:])
	}
}
