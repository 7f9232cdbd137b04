package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// view prints the run's progress: events as lines, and the status either as
// a block redrawn in place (live, on a terminal) or as a plain line.
type view struct {
	mu    sync.Mutex
	w     io.Writer
	live  bool
	block int // lines of the status block currently on screen

	lastTotal int
	lastAt    time.Time
}

func newView(w io.Writer, live bool) *view { return &view{w: w, live: live} }

// event prints one line about something that happened, above the status
// block.
func (v *view) event(at time.Duration, msg string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearBlock()
	fmt.Fprintf(v.w, "%s  %s\n", clock(at), msg)
}

func (v *view) clearBlock() {
	if v.live && v.block > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA\x1b[J", v.block)
		v.block = 0
	}
}

func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// workerStatus mirrors the status file kinesis-demo-consumer writes.
type workerStatus struct {
	Records int64            `json:"records"`
	Behind  map[string]int64 `json:"millisBehindLatest"`
}

func readStatus(path string) (workerStatus, bool) {
	var s workerStatus
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &s) != nil {
		return s, false
	}
	return s, true
}

// render draws the status; final forces a plain line in plain mode.
func (r *run) render(final bool) {
	v := r.view
	now := time.Now()
	rate := 0.0
	if !v.lastAt.IsZero() {
		rate = float64(r.tally.total-v.lastTotal) / now.Sub(v.lastAt).Seconds()
	}
	v.lastTotal, v.lastAt = r.tally.total, now

	held := r.leasesByOwner(context.Background())
	st := r.proxy.Stats()
	sent := int(r.log.written.Load())
	var lines []string
	lines = append(lines,
		fmt.Sprintf("%s  log: %d/%d lines written, %d rotations | stream: %d user records in %d Kinesis records, %d throttled, %d faults injected",
			clock(r.elapsed()), sent, r.cfg.Lines, r.log.rotated.Load(), st.UserRecords, st.Records, st.Throttled, st.Faults),
		fmt.Sprintf("      consumed: %d distinct (%.0f/s), behind %d, duplicates %d",
			r.tally.distinct, rate, max(0, sent-r.tally.distinct), r.tally.duplicates))
	var workers []string
	var maxBehind int64
	for _, p := range r.workers {
		state := "running"
		switch {
		case p.wasKilled():
			state = "KILLED"
		case !p.alive():
			state = "exited"
		}
		behind := int64(0)
		if s, ok := readStatus(filepath.Join(r.cfg.Dir, "out", p.name+".json")); ok && state == "running" {
			for _, ms := range s.Behind {
				behind = max(behind, ms)
			}
		}
		maxBehind = max(maxBehind, behind)
		leases := held[p.name]
		note := fmt.Sprintf("lag %d ms", behind)
		if state != "running" {
			note = ""
			if len(leases) > 0 {
				note = "(its leases expire after the failover time)"
			}
		}
		lines = append(lines, fmt.Sprintf("      %-9s %-8s leases %d %-36s %s", p.name, state, len(leases),
			"["+strings.Join(shortIDs(leases), " ")+"]", note))
		workers = append(workers, fmt.Sprintf("%s=%d", p.name, len(leases)))
	}
	if n := len(held[""]); n > 0 {
		lines = append(lines, fmt.Sprintf("      %-9s %-8s leases %d [%s]", "unowned", "", n, strings.Join(shortIDs(held[""]), " ")))
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if v.live {
		v.clearBlock()
		for _, l := range lines {
			fmt.Fprintln(v.w, l)
		}
		v.block = len(lines)
		if final {
			v.block = 0 // leave the last status on screen
		}
		return
	}
	fmt.Fprintf(v.w, "%s  written %d/%d, consumed %d distinct (%.0f/s), duplicates %d, lag %d ms, leases %s, throttled %d, faults %d\n",
		clock(r.elapsed()), sent, r.cfg.Lines, r.tally.distinct, rate, r.tally.duplicates, maxBehind, strings.Join(workers, " "), st.Throttled, st.Faults)
}
