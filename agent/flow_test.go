package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/agent/tail"
)

// The tests in this file drive a flow's loop with made-up tail events
// inside a synctest bubble: no file is read, and time moves only when every
// goroutine waits, so the timing of buffer age and backoff is checked
// exactly and at once.

// scriptSink acknowledges records from within Put, after refusing the first
// refuse calls (Put returns an error) and failing the next fail records
// (done reports an error).
type scriptSink struct {
	mu        sync.Mutex
	refuse    int
	refuseAll bool
	fail      int
	puts      []time.Time // when Put was called, refused calls included
	got       []string    // acknowledged records
}

func (s *scriptSink) Put(_ context.Context, r Record, done func(error)) error {
	s.mu.Lock()
	s.puts = append(s.puts, time.Now())
	switch {
	case s.refuseAll || s.refuse > 0:
		s.refuse--
		s.mu.Unlock()
		return errors.New("sink full")
	case s.fail > 0:
		s.fail--
		s.mu.Unlock()
		done(errors.New("injected failure"))
		return nil
	}
	s.got = append(s.got, string(r.Data))
	s.mu.Unlock()
	done(nil)
	return nil
}

func (s *scriptSink) Flush(context.Context) error { return nil }
func (s *scriptSink) Close(context.Context) error { return nil }

func (s *scriptSink) records() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// gaps returns the time between consecutive Put calls.
func (s *scriptSink) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(s.puts); i++ {
		out = append(out, s.puts[i].Sub(s.puts[i-1]))
	}
	return out
}

const testPath = "/logs/app.log"

// pumpFlow makes the flow of fl and runs its loop on the returned channel;
// stop ends the loop and waits for it. It must be called in a bubble.
func pumpFlow(t *testing.T, fl config.Flow, cfg Config, sink Sink) (f *flow, events chan<- tail.Event, stop func()) {
	t.Helper()
	cfg.Flows = []config.Flow{fl}
	cfg.Offsets = &offsets.Store{}
	cfg.NewSink = func(config.Flow) (Sink, error) { return sink, nil }
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f = a.flows[0]
	ch := make(chan tail.Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.pump(ctx, sink, ch)
	}()
	return f, ch, func() {
		cancel()
		<-done
	}
}

// write sends the events of a file opened at offset 0 and read up to its
// end, data included.
func write(events chan<- tail.Event, h *tail.File, data string) {
	events <- tail.Event{File: h, Kind: tail.Open, Path: testPath}
	events <- tail.Event{File: h, Kind: tail.Data, Path: testPath, Data: []byte(data), EOF: true}
}

func TestPartialLineSentAfterExactlyBufferAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fl := flowFor(testPath)
		fl.MaxBufferAge = 300 * time.Millisecond
		sink := &scriptSink{}
		_, events, stop := pumpFlow(t, fl, Config{}, sink)
		defer stop()
		write(events, &tail.File{}, "complete\nno newline yet")
		synctest.Wait()
		if got := sink.records(); len(got) != 1 || got[0] != "complete\n" {
			t.Fatalf("at once: sent %q, want the complete line only", got)
		}
		time.Sleep(fl.MaxBufferAge - time.Nanosecond)
		synctest.Wait()
		if got := sink.records(); len(got) != 1 {
			t.Fatalf("before MaxBufferAge: sent %q", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := sink.records(); len(got) != 2 || got[1] != "no newline yet" {
			t.Fatalf("at MaxBufferAge: sent %q, want the partial line too", got)
		}
	})
}

func TestRetryBackoffGrowsWithJitterUpToItsCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failures = 10
		cfg := Config{RetryBackoff: 500 * time.Millisecond}
		fl := flowFor(testPath)
		sink := &scriptSink{fail: failures}
		f, events, stop := pumpFlow(t, fl, cfg, sink)
		defer stop()
		// The loop puts a record again at its first tick after the backoff.
		tick := min(max(fl.MaxBufferAge/4, 10*time.Millisecond), 100*time.Millisecond)
		ceiling := func(failure int) time.Duration { return min(cfg.RetryBackoff<<(failure-1), 30*time.Second) }
		var bound time.Duration
		for k := 1; k <= failures; k++ {
			bound += ceiling(k) + tick
		}
		write(events, &tail.File{}, "one\n")
		time.Sleep(bound)
		synctest.Wait()
		if got := sink.records(); len(got) != 1 {
			t.Fatalf("after %v: acknowledged %q, want the record once", bound, got)
		}
		gaps := sink.gaps()
		if len(gaps) != failures {
			t.Fatalf("%d puts again, want %d", len(gaps), failures)
		}
		var longest time.Duration
		for i, g := range gaps {
			if c := ceiling(i + 1); g > c+tick {
				t.Errorf("after failure %d: put again after %v, more than its ceiling %v", i+1, g, c)
			}
			longest = max(longest, g)
		}
		// Full jitter makes any one wait short, but not every one of the
		// waits with ceilings of 8s to 30s.
		if longest <= cfg.RetryBackoff {
			t.Errorf("waits %v: none longer than RetryBackoff; the backoff does not grow", gaps)
		}
		if v := testutil.ToFloat64(f.m.failed); v != failures {
			t.Errorf("record_failures_total = %v, want %d", v, failures)
		}
		f.mu.Lock()
		pending := f.pendingRecs
		f.mu.Unlock()
		if pending != 0 {
			t.Errorf("%d records pending after the acknowledgement", pending)
		}
	})
}

func TestRefusedRecordOfferedAgainWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const refusals = 8
		sink := &scriptSink{refuse: refusals}
		_, events, stop := pumpFlow(t, flowFor(testPath), Config{}, sink)
		defer stop()
		ceiling := func(refusal int) time.Duration { return min(10*time.Millisecond<<(refusal-1), time.Second) }
		var bound time.Duration
		for k := 1; k <= refusals; k++ {
			bound += ceiling(k)
		}
		write(events, &tail.File{}, "one\n")
		time.Sleep(bound)
		synctest.Wait()
		if got := sink.records(); len(got) != 1 {
			t.Fatalf("after %v: acknowledged %q, want the record", bound, got)
		}
		for i, g := range sink.gaps() {
			if c := ceiling(i + 1); g > c {
				t.Errorf("after refusal %d: offered again after %v, more than its ceiling %v", i+1, g, c)
			}
		}
	})
}

func TestRefusedRecordForgottenWhenTheFlowStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &scriptSink{refuseAll: true}
		f, events, stop := pumpFlow(t, flowFor(testPath), Config{}, sink)
		h := &tail.File{}
		write(events, h, "one\n")
		time.Sleep(time.Minute)
		start := time.Now()
		stop()
		if d := time.Since(start); d != 0 {
			t.Errorf("the loop took %v to stop while waiting to offer a record again", d)
		}
		f.mu.Lock()
		recs, bytes, acked := f.pendingRecs, f.pendingBytes, f.files[h].gen.acked
		f.mu.Unlock()
		if recs != 0 || bytes != 0 {
			t.Errorf("pending %d records, %d bytes after the refused record was given up", recs, bytes)
		}
		if acked != 0 {
			t.Errorf("offset %d acknowledged for a record never taken", acked)
		}
	})
}

// unavailableSink answers code for every record until open is true: from
// Put (refusing the record, as the producer does without a shard map) or
// through done (as for a PutRecords call that failed).
type unavailableSink struct {
	mu       sync.Mutex
	code     string
	viaDone  bool
	open     bool
	answered int // records answered code
	got      []string
}

func (s *unavailableSink) Put(_ context.Context, r Record, done func(error)) error {
	s.mu.Lock()
	if !s.open {
		s.answered++
		s.mu.Unlock()
		err := fmt.Errorf("PutRecords: %w", &smithy.GenericAPIError{Code: s.code, Message: "not for you"})
		if !s.viaDone {
			return err
		}
		done(err)
		return nil
	}
	s.got = append(s.got, string(r.Data))
	s.mu.Unlock()
	done(nil)
	return nil
}

func (s *unavailableSink) Flush(context.Context) error { return nil }
func (s *unavailableSink) Close(context.Context) error { return nil }

func (s *unavailableSink) state() (answered int, got []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered, slices.Clone(s.got)
}

// TestUnavailableStreamPausesTheFlow: a stream that does not exist or may
// not be written is tried again once per UnavailableBackoff (not at the
// usual backoff of failed records), each pause is logged at error level
// and counted, and the records go out once the stream takes them.
func TestUnavailableStreamPausesTheFlow(t *testing.T) {
	for _, tc := range []struct {
		code    string
		viaDone bool
	}{{"ResourceNotFoundException", false}, {"AccessDeniedException", true}, {"ResourceNotFoundException", true}} {
		t.Run(fmt.Sprintf("%s/done=%v", tc.code, tc.viaDone), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				core, logs := observer.New(zap.InfoLevel)
				sink := &unavailableSink{code: tc.code, viaDone: tc.viaDone}
				f, events, stop := pumpFlow(t, flowFor(testPath), Config{Logger: zap.New(core)}, sink)
				defer stop()
				write(events, &tail.File{}, "one\ntwo\nthree\n")
				// Answered at 0 s, then once a minute (and a tick).
				time.Sleep(150 * time.Second)
				synctest.Wait()
				answered, got := sink.state()
				if answered != 3 || len(got) != 0 {
					t.Fatalf("in 150 s: %d records answered %s, %d taken; want 3 and 0 (one try a minute)", answered, tc.code, len(got))
				}
				if v := testutil.ToFloat64(f.m.unavailable(tc.code)); v != 3 {
					t.Errorf("kinesis_agent_stream_unavailable_total = %v, want 3", v)
				}
				errs := logs.FilterLevelExact(zap.ErrorLevel).All()
				if len(errs) != 3 || errs[0].ContextMap()["flow"] != f.id || errs[0].ContextMap()["code"] != tc.code {
					t.Fatalf("error logs %+v, want 3 naming flow %s and code %s", errs, f.id, tc.code)
				}
				sink.mu.Lock()
				sink.open = true
				sink.mu.Unlock()
				time.Sleep(time.Minute)
				synctest.Wait()
				if _, got := sink.state(); !slices.Equal(got, []string{"one\n", "two\n", "three\n"}) {
					t.Fatalf("after the stream opened: sent %q", got)
				}
				if logs.FilterMessageSnippet("takes records again").Len() != 1 {
					t.Error("the recovery was not logged")
				}
			})
		})
	}
}
