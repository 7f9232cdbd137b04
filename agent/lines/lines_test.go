package lines

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

type got struct {
	recs []string
	ends []int64
}

func (g *got) emit(r Record) {
	g.recs = append(g.recs, string(r.Data))
	g.ends = append(g.ends, r.End)
}

// feedAll writes in in pieces of n bytes (0 = all at once).
func feedAll(s *Splitter, in string, n int) *got {
	g := &got{}
	if n == 0 {
		s.Write([]byte(in), g.emit)
		return g
	}
	for i := 0; i < len(in); i += n {
		j := min(i+n, len(in))
		s.Write([]byte(in[i:j]), g.emit)
	}
	return g
}

func check(t *testing.T, g *got, recs []string, ends []int64) {
	t.Helper()
	if fmt.Sprintf("%q", g.recs) != fmt.Sprintf("%q", recs) {
		t.Errorf("records\n got %q\nwant %q", g.recs, recs)
	}
	if ends != nil && fmt.Sprint(g.ends) != fmt.Sprint(ends) {
		t.Errorf("ends got %v want %v", g.ends, ends)
	}
}

func TestLinesAnyChunking(t *testing.T) {
	in := "alpha\nbeta\r\n\ngamma\n"
	for _, n := range []int{0, 1, 2, 3, 7} {
		s := New(Config{}, 0)
		g := feedAll(s, in, n)
		check(t, g, []string{"alpha\n", "beta\r\n", "\n", "gamma\n"}, []int64{6, 12, 13, 19})
		if s.Pending() {
			t.Error("nothing should be pending")
		}
	}
}

func TestPartialLastLineHeldUntilCompletedOrFlushed(t *testing.T) {
	s := New(Config{}, 100)
	g := &got{}
	s.Write([]byte("one\ntw"), g.emit)
	check(t, g, []string{"one\n"}, []int64{104})
	if !s.Pending() {
		t.Fatal("partial line should be pending")
	}
	s.Write([]byte("o\n"), g.emit)
	check(t, g, []string{"one\n", "two\n"}, []int64{104, 108})

	s.Write([]byte("thr"), g.emit)
	s.Flush(g.emit)
	s.Write([]byte("ee\n"), g.emit)
	check(t, g, []string{"one\n", "two\n", "thr", "ee\n"}, []int64{104, 108, 111, 114})
}

func TestHeaderSkipping(t *testing.T) {
	s := New(Config{SkipHeaderLines: 2}, 0)
	g := feedAll(s, "h1,h2\n# comment\nv1,v2\n", 1)
	check(t, g, []string{"v1,v2\n"}, []int64{22})
	if s.Stats().HeaderLines != 2 {
		t.Errorf("stats %+v", s.Stats())
	}
	// Resuming mid-file never skips.
	s = New(Config{SkipHeaderLines: 2}, 6)
	g = feedAll(s, "a\nb\n", 0)
	check(t, g, []string{"a\n", "b\n"}, nil)
}

func TestMultiLine(t *testing.T) {
	in := "stray\n2024-01-01 start one\n  at foo\n  at bar\n2024-01-02 two\n2024-01-03 three\n  tail"
	cfg := Config{MultiLineStart: regexp.MustCompile(`^\d{4}-\d{2}-\d{2} `)}
	for _, n := range []int{0, 1, 5} {
		s := New(cfg, 0)
		g := feedAll(s, in, n)
		check(t, g, []string{"stray\n", "2024-01-01 start one\n  at foo\n  at bar\n", "2024-01-02 two\n"}, []int64{6, 45, 60})
		s.Flush(g.emit)
		check(t, g, []string{"stray\n", "2024-01-01 start one\n  at foo\n  at bar\n", "2024-01-02 two\n", "2024-01-03 three\n  tail"}, []int64{6, 45, 60, int64(len(in))})
	}
}

func TestTruncateLongLine(t *testing.T) {
	long := strings.Repeat("x", 50)
	for _, n := range []int{0, 1, 7} {
		s := New(Config{MaxRecordSize: 16, Terminator: "~\n"}, 0)
		g := feedAll(s, "short\n"+long+"\nafter\n", n)
		check(t, g, []string{"short\n", strings.Repeat("x", 14) + "~\n", "after\n"}, []int64{6, 57, 63})
		if st := s.Stats(); st.Truncated != 1 || st.DroppedBytes != 37 {
			t.Errorf("chunk %d: stats %+v", n, st)
		}
	}
	// A line of exactly the maximum, newline included, is not cut.
	s := New(Config{MaxRecordSize: 16}, 0)
	g := feedAll(s, strings.Repeat("y", 15)+"\n", 1)
	check(t, g, []string{strings.Repeat("y", 15) + "\n"}, nil)
}

func TestTruncatedPartialFlushThenRest(t *testing.T) {
	s := New(Config{MaxRecordSize: 8}, 0)
	g := &got{}
	s.Write([]byte("abcdefghijkl"), g.emit)
	s.Flush(g.emit)
	s.Write([]byte("mnop\nz\n"), g.emit)
	check(t, g, []string{"abcdefg\n", "z\n"}, []int64{12, 19})
}

func TestSplitLongLine(t *testing.T) {
	for _, n := range []int{0, 1, 4} {
		s := New(Config{MaxRecordSize: 8, Split: true}, 0)
		g := feedAll(s, "0123456789abcdefXYZ\nok\n", n)
		check(t, g, []string{"0123456\n", "789abcd\n", "efXYZ\n", "ok\n"}, []int64{7, 14, 20, 23})
		if s.Stats().Split != 2 {
			t.Errorf("stats %+v", s.Stats())
		}
	}
}

func TestMultiLineBounded(t *testing.T) {
	re := regexp.MustCompile(`^S`)
	s := New(Config{MultiLineStart: re, MaxRecordSize: 10}, 0)
	g := feedAll(s, "S1\naaaa\nbbbb\ncc\nS2\n", 0)
	s.Flush(g.emit)
	check(t, g, []string{"S1\naaaa\nb\n", "S2\n"}, []int64{16, 19})
	s = New(Config{MultiLineStart: re, MaxRecordSize: 10, Split: true}, 0)
	g = feedAll(s, "S1\naaaa\nbbbb\ncc\nS2\n", 0)
	s.Flush(g.emit)
	check(t, g, []string{"S1\naaaa\n", "bbbb\ncc\n", "S2\n"}, []int64{8, 16, 19})
}

func TestInvalidUTF8PassedThrough(t *testing.T) {
	s := New(Config{}, 0)
	g := feedAll(s, "\xff\xfe bad\n", 0)
	check(t, g, []string{"\xff\xfe bad\n"}, nil)
}
