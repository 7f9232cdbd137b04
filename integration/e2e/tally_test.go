package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAccessLineCarriesID(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for id := range 1000 {
		l := accessLine(r, id, time.Now())
		if got := parseID([]byte(l)); got != id {
			t.Fatalf("parseID(%q) = %d, want %d", l, got, id)
		}
		if !strings.HasSuffix(l, "\n") || strings.Count(l, "\n") != 1 {
			t.Fatalf("not one line: %q", l)
		}
	}
	if parseID([]byte("no id here")) != -1 {
		t.Error("parseID of a foreign line")
	}
}

func TestTallyCountsCompleteLinesOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.txt")
	r := rand.New(rand.NewPCG(1, 1))
	write := func(s string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteString(s)
	}
	tl := newTally(10)
	l0, l1, l2 := accessLine(r, 0, time.Now()), accessLine(r, 1, time.Now()), accessLine(r, 2, time.Now())
	write(l0 + l1 + l2[:20]) // a writer killed mid-line
	if err := tl.scan(path); err != nil {
		t.Fatal(err)
	}
	if tl.distinct != 2 || tl.total != 2 {
		t.Fatalf("after a partial line: distinct %d total %d, want 2 2", tl.distinct, tl.total)
	}
	write(l2[20:] + l0 + "garbage\n")
	if err := tl.scan(path); err != nil {
		t.Fatal(err)
	}
	if tl.distinct != 3 || tl.duplicates != 1 || tl.foreign != 1 || tl.total != 5 {
		t.Fatalf("distinct %d duplicates %d foreign %d total %d; want 3 1 1 5", tl.distinct, tl.duplicates, tl.foreign, tl.total)
	}
	ids, n := tl.missing(10, 3)
	if n != 7 || len(ids) != 3 || ids[0] != 3 {
		t.Errorf("missing = %v, %d; want [3 4 5], 7", ids, n)
	}
}

func TestLogWriterRotatesByRename(t *testing.T) {
	dir := t.TempDir()
	l := &logWriter{dir: dir, total: 300, rate: 1000, rotate: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- l.run(context.Background()) }()
	rotated := 0
	for rotated < 2 {
		select {
		case l.rotate <- struct{}{}:
			rotated++
		case err := <-done:
			t.Fatalf("writer ended before two rotations: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("writer did not accept a rotation within 10s")
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tl := newTally(300)
	for _, name := range []string{"access.log.2", "access.log.1", "access.log"} {
		if err := tl.scan(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if tl.distinct != 300 || tl.duplicates != 0 || l.rotated.Load() != 2 {
		t.Errorf("after two rotations: %d distinct, %d duplicates, %d rotations; want 300, 0, 2", tl.distinct, tl.duplicates, l.rotated.Load())
	}
}
