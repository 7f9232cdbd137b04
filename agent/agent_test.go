package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/internal/wait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSink acknowledges records from its own goroutine, in random order,
// failing some of them; it can hold acknowledgements back.
type fakeSink struct {
	mu       sync.Mutex
	got      [][]byte // acknowledged records, in acknowledgement order
	keys     []string // their partition keys
	queue    []func()
	failRate float64
	hold     bool
	puts     int
	wake     chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   bool
}

func newFakeSink(failRate float64) *fakeSink {
	s := &fakeSink{failRate: failRate, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	s.wg.Add(1)
	go s.loop()
	return s
}

func (s *fakeSink) Put(ctx context.Context, r Record, done func(error)) error {
	if r.PartitionKey == "" || len(r.PartitionKey) > 256 {
		return fmt.Errorf("bad partition key %q", r.PartitionKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("closed")
	}
	s.puts++
	data, key := bytes.Clone(r.Data), r.PartitionKey
	s.queue = append(s.queue, func() {
		if rand.Float64() < s.failRate {
			done(errors.New("injected failure"))
			return
		}
		s.mu.Lock()
		s.got = append(s.got, data)
		s.keys = append(s.keys, key)
		s.mu.Unlock()
		done(nil)
	})
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *fakeSink) loop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-time.After(5 * time.Millisecond):
		}
		s.mu.Lock()
		if s.hold {
			s.mu.Unlock()
			continue
		}
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		rand.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
		for _, f := range q {
			f()
		}
	}
}

func (s *fakeSink) Flush(context.Context) error { return nil }

func (s *fakeSink) Close(context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	return nil
}

func (s *fakeSink) setHold(h bool) {
	s.mu.Lock()
	s.hold = h
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *fakeSink) records() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.got))
	for i, b := range s.got {
		out[i] = string(b)
	}
	return out
}

type running struct {
	a      *Agent
	cancel context.CancelFunc
	done   chan error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func startAgent(t *testing.T, cfg Config) *running {
	t.Helper()
	if cfg.SaveInterval == 0 {
		cfg.SaveInterval = 20 * time.Millisecond
	}
	if cfg.CloseInactive == 0 {
		cfg.CloseInactive = 200 * time.Millisecond
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		default:
		}
	})
	return r
}

func flowFor(pattern string) config.Flow {
	return config.Flow{
		FilePattern: pattern, Stream: "s", PartitionKeyOption: config.PartitionKeyRandom,
		InitialPosition: config.StartOfFile, MaxBufferAge: 50 * time.Millisecond, MaxBufferSizeRecords: 500,
		MaxBufferSizeBytes: 4 << 20, PollInterval: 20 * time.Millisecond, TruncatedRecordTerminator: "\n",
		MaxRecordSizeBytes: 1 << 20, LongLineAction: config.LongLineTruncate,
	}
}

func appendLines(t *testing.T, path string, from, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "line %06d\n", i)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

// checkEach asserts every line from..to-1 was delivered at least once and
// returns the number of duplicates.
func checkEach(t *testing.T, got []string, to int) int {
	t.Helper()
	seen := map[string]int{}
	for _, r := range got {
		seen[r]++
	}
	dups := 0
	for i := 0; i < to; i++ {
		k := fmt.Sprintf("line %06d\n", i)
		if seen[k] == 0 {
			t.Fatalf("line %d never delivered", i)
		}
		dups += seen[k] - 1
	}
	return dups
}

func openStore(t testing.TB, path string) *offsets.Store {
	t.Helper()
	s, err := offsets.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDeliversEverythingDespiteFailuresAndReorderedAcks(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, 0, 2000)
	sink := newFakeSink(0.1)
	reg := prometheus.NewRegistry()
	cp := filepath.Join(dir, "state", "cp.json")
	r := startAgent(t, Config{
		Flows: []config.Flow{flowFor(log)}, Offsets: openStore(t, cp),
		NewSink: func(config.Flow) (Sink, error) { return sink, nil }, Metrics: reg, RetryBackoff: time.Millisecond,
	})
	appendLines(t, log, 2000, 1000)
	wait.For(t, 20*time.Second, "3000 records", func() bool { return len(sink.records()) >= 3000 })
	fi, _ := os.Stat(log)
	wait.For(t, 5*time.Second, "offset saved at end of file", func() bool {
		s, err := offsets.Open(cp)
		if err != nil {
			return false
		}
		e := s.Get(flowFor(log).ID())
		return len(e) == 1 && e[0].Offset == fi.Size()
	})
	r.stop(t)
	if dups := checkEach(t, sink.records(), 3000); dups != 0 {
		t.Errorf("%d duplicates without a crash", dups)
	}
	id := flowFor(log).ID()
	if v := testutil.ToFloat64(r.a.metrics.sentRecords.WithLabelValues(id)); v != 3000 {
		t.Errorf("records_sent_total = %v", v)
	}
	if v := testutil.ToFloat64(r.a.metrics.failed.WithLabelValues(id)); v == 0 {
		t.Error("record_failures_total = 0 with 10% injected failures")
	}
	st, _ := os.Stat(cp)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint mode %v", st.Mode().Perm())
	}
}

func TestSavedOffsetIsLastContiguousAck(t *testing.T) {
	tr := &tracker{acked: 10}
	a, b, c := tr.add(20), tr.add(30), tr.add(40)
	tr.ack(c)
	if tr.acked != 10 {
		t.Fatalf("acked %d after out-of-order ack", tr.acked)
	}
	tr.ack(a)
	if tr.acked != 20 {
		t.Fatalf("acked %d", tr.acked)
	}
	tr.ack(b)
	if tr.acked != 40 || len(tr.queue) != 0 {
		t.Fatalf("acked %d queue %d", tr.acked, len(tr.queue))
	}
	tr.ack(b) // stale: ignored
	d := tr.add(40)
	tr.ack(d) // records with the same end (split pieces) keep the offset
	if tr.acked != 40 {
		t.Fatal(tr.acked)
	}
}

func TestRestartResumesWithoutLossOrDuplicates(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	cp := filepath.Join(dir, "cp.json")
	appendLines(t, log, 0, 500)
	sink := newFakeSink(0)
	newSink := func(config.Flow) (Sink, error) { return sink, nil }
	r := startAgent(t, Config{Flows: []config.Flow{flowFor(log)}, Offsets: openStore(t, cp), NewSink: newSink})
	wait.For(t, 10*time.Second, "500 records", func() bool { return len(sink.records()) >= 500 })
	r.stop(t)

	appendLines(t, log, 500, 300)
	sink2 := newFakeSink(0)
	r2 := startAgent(t, Config{Flows: []config.Flow{flowFor(log)}, Offsets: openStore(t, cp), NewSink: func(config.Flow) (Sink, error) { return sink2, nil }})
	wait.For(t, 10*time.Second, "300 records", func() bool { return len(sink2.records()) >= 300 })
	r2.stop(t)
	got := sink2.records()
	if len(got) != 300 {
		t.Fatalf("got %d records after a clean restart, want 300", len(got))
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for i := 500; i < 800; i++ {
		if !seen[fmt.Sprintf("line %06d\n", i)] {
			t.Fatalf("line %d missing", i)
		}
	}
}

func TestRestartAfterRotationWithMatchingPattern(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	cp := filepath.Join(dir, "cp.json")
	appendLines(t, log, 0, 500)
	fl := flowFor(log + "*")
	sink := newFakeSink(0)
	r := startAgent(t, Config{Flows: []config.Flow{fl}, Offsets: openStore(t, cp), NewSink: func(config.Flow) (Sink, error) { return sink, nil }})
	wait.For(t, 10*time.Second, "500 records", func() bool { return len(sink.records()) >= 500 })
	r.stop(t)

	appendLines(t, log, 500, 300)
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, 800, 200)
	sink2 := newFakeSink(0)
	r2 := startAgent(t, Config{Flows: []config.Flow{fl}, Offsets: openStore(t, cp), NewSink: func(config.Flow) (Sink, error) { return sink2, nil }})
	wait.For(t, 10*time.Second, "500 records", func() bool { return len(sink2.records()) >= 500 })
	r2.stop(t)
	got := sink2.records()
	if len(got) != 500 {
		t.Fatalf("got %d records after restart, want 500", len(got))
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for i := 500; i < 1000; i++ {
		if !seen[fmt.Sprintf("line %06d\n", i)] {
			t.Fatalf("line %d missing", i)
		}
	}
}

func TestBackpressurePausesReading(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, 0, 30000)
	sink := newFakeSink(0)
	sink.setHold(true)
	cp := filepath.Join(dir, "cp.json")
	r := startAgent(t, Config{
		Flows: []config.Flow{flowFor(log)}, Offsets: openStore(t, cp), NewSink: func(config.Flow) (Sink, error) { return sink, nil },
		MaxPendingRecords: 100,
	})
	wait.For(t, 5*time.Second, "100 puts", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.puts >= 100 })
	time.Sleep(100 * time.Millisecond) // would the agent read on while the sink holds everything?
	sink.mu.Lock()
	puts := sink.puts
	sink.mu.Unlock()
	if puts > 100+1 {
		t.Fatalf("%d records put while 100 were unacknowledged: reading did not pause", puts)
	}
	st := r.a.flows[0].tailer.Status()
	if len(st) != 1 || st[0].Offset >= st[0].Size {
		t.Errorf("tailer read the whole file while blocked: %+v", st)
	}
	// Nothing acknowledged: the saved offset stays at 0.
	if e := openStore(t, cp).Get(flowFor(log).ID()); len(e) == 1 && e[0].Offset != 0 {
		t.Errorf("offset %d saved without acknowledgements", e[0].Offset)
	}
	sink.setHold(false)
	wait.For(t, 60*time.Second, "30000 records", func() bool { return len(sink.records()) >= 30000 })
	r.stop(t)
	checkEach(t, sink.records(), 30000)
}

func TestProcessingAndUnparsedCounting(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "data.csv")
	if err := os.WriteFile(log, []byte("id,name\n1,ann\n2,bob,extra,fields\n3,cy\n4,d\xffe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, drop := range []bool{false, true} {
		sink := newFakeSink(0)
		fl := flowFor(log)
		fl.SkipHeaderLines = 1
		fl.DropUnparsedRecords = drop
		fl.PartitionKeyOption = config.PartitionKeyDeterministic
		fl.Processing = []config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"id", "name"}, Delimiter: ","}}
		cp := filepath.Join(dir, fmt.Sprintf("cp-%v.json", drop))
		r := startAgent(t, Config{Flows: []config.Flow{fl}, Offsets: openStore(t, cp), NewSink: func(config.Flow) (Sink, error) { return sink, nil }})
		want := 4
		if drop {
			want = 3
		}
		wait.For(t, 5*time.Second, "records", func() bool { return len(sink.records()) >= want })
		wait.For(t, 5*time.Second, "offset at end", func() bool {
			e := openStore(t, cp).Get(fl.ID())
			return len(e) == 1 && e[0].Offset == 44
		})
		r.stop(t)
		got := strings.Join(sink.records(), "")
		for _, w := range []string{`{"id":"1","name":"ann"}` + "\n", `{"id":"3","name":"cy"}` + "\n", `{"id":"4","name":"d\ufffde"}` + "\n"} {
			if !strings.Contains(got, w) {
				t.Errorf("drop=%v: %q missing from %q", drop, w, got)
			}
		}
		if strings.Contains(got, "id,name") {
			t.Errorf("header sent")
		}
		if strings.Contains(got, "2,bob,extra") == drop {
			t.Errorf("drop=%v: unparsed line handling wrong: %q", drop, got)
		}
		m := r.a.metrics
		if v := testutil.ToFloat64(m.unparsed.WithLabelValues(fl.ID())); v < 1 {
			t.Errorf("unparsed = %v", v)
		}
		if v := testutil.ToFloat64(m.headerLines.WithLabelValues(fl.ID())); v < 1 {
			t.Errorf("header lines = %v", v)
		}
		if v := testutil.ToFloat64(m.invalidUTF8.WithLabelValues(fl.ID())); v != 1 {
			t.Errorf("records_invalid_utf8_total = %v, want 1", v)
		}
	}
}

// keysByRecord returns the partition key each acknowledged record had.
func (s *fakeSink) keysByRecord() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for i, b := range s.got {
		out[string(b)] = s.keys[i]
	}
	return out
}

func TestPartitionKeyFromTheRecord(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "data.csv")
	if err := os.WriteFile(csv, []byte("web-1,GET\n,GET\nweb-2,PUT\nnot csv at all, no, really\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "raw.log")
	if err := os.WriteFile(raw, []byte("user=ann did x\nnobody did y\nuser=bob did z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	byField := flowFor(csv)
	byField.PartitionKeyOption, byField.PartitionKeyField = config.PartitionKeyField, "host"
	byField.Processing = []config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"host", "verb"}, Delimiter: ","}}
	byRegex := flowFor(raw)
	byRegex.Stream = "t"
	byRegex.PartitionKeyOption, byRegex.PartitionKeyPattern = config.PartitionKeyRegex, regexp.MustCompile(`user=(\w+)`)
	byRegex.Processing = []config.Option{{Name: config.OptAddMetadata, Metadata: map[string]any{"k": "v"}}}
	sinks := map[string]*fakeSink{"s": newFakeSink(0), "t": newFakeSink(0)}
	r := startAgent(t, Config{Flows: []config.Flow{byField, byRegex}, Offsets: openStore(t, filepath.Join(dir, "cp.json")),
		NewSink: func(fl config.Flow) (Sink, error) { return sinks[fl.Stream], nil }})
	wait.For(t, 5*time.Second, "records", func() bool { return len(sinks["s"].records()) == 4 && len(sinks["t"].records()) == 3 })
	r.stop(t)

	keys := sinks["s"].keysByRecord()
	for rec, want := range map[string]string{`{"host":"web-1","verb":"GET"}` + "\n": "web-1", `{"host":"web-2","verb":"PUT"}` + "\n": "web-2"} {
		if keys[rec] != want {
			t.Errorf("%q: key %q, want %q (keys %q)", rec, keys[rec], want, keys)
		}
	}
	// An empty field and an unparsed line fall back to a random key.
	for rec, k := range keys {
		if !strings.Contains(rec, "web-") && (len(k) < 16 || strings.Contains(k, "web")) {
			t.Errorf("%q: key %q, want a random one", rec, k)
		}
	}
	keys = sinks["t"].keysByRecord()
	found := map[string]bool{}
	for rec, k := range keys {
		switch {
		case strings.Contains(rec, "user=ann"), strings.Contains(rec, "user=bob"):
			found[k] = true
		case len(k) < 16:
			t.Errorf("%q: key %q, want a random one", rec, k)
		}
	}
	if !found["ann"] || !found["bob"] {
		t.Errorf("regex keys %q", keys)
	}
	m := r.a.metrics
	if v := testutil.ToFloat64(m.keyFallbacks.WithLabelValues(byField.ID())); v != 2 {
		t.Errorf("field fallbacks = %v, want 2", v)
	}
	if v := testutil.ToFloat64(m.keyFallbacks.WithLabelValues(byRegex.ID())); v != 1 {
		t.Errorf("regex fallbacks = %v, want 1", v)
	}
}

func TestFieldKey(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tc := range []struct{ data, want string }{
		{`{"k":"a b"}`, "a b"},
		{`{"k":42}`, "42"},
		{`{"k":true}`, "true"},
		{`{"k":null}`, ""},
		{`{"k":{"x":1}}`, ""},
		{`{"k":[1]}`, ""},
		{`{"k":""}`, ""},
		{`{"other":"x"}`, ""},
		{`not json`, ""},
		{`{"k":"` + long + `"}`, long[:512]}, // 256 two-byte characters
	} {
		if got := fieldKey([]byte(tc.data), "k"); got != tc.want {
			t.Errorf("fieldKey(%.40q) = %.40q, want %.40q", tc.data, got, tc.want)
		}
	}
}

func TestSinkErrorStopsRun(t *testing.T) {
	dir := t.TempDir()
	a, err := New(Config{Flows: []config.Flow{flowFor(filepath.Join(dir, "x.log"))}, Offsets: openStore(t, filepath.Join(dir, "cp")),
		NewSink: func(config.Flow) (Sink, error) { return nil, errors.New("no credentials") }})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Fatalf("Run = %v", err)
	}
}

func TestRunTwiceReturnsErrAlreadyRun(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendLines(t, log, 0, 10)
	sink := newFakeSink(0)
	var sinks atomic.Int32
	r := startAgent(t, Config{Flows: []config.Flow{flowFor(log)}, Offsets: openStore(t, filepath.Join(dir, "cp.json")),
		NewSink: func(config.Flow) (Sink, error) { sinks.Add(1); return sink, nil }})
	wait.For(t, 5*time.Second, "10 records", func() bool { return len(sink.records()) >= 10 })
	if err := r.a.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Fatalf("Run while running = %v, want ErrAlreadyRun", err)
	}
	r.stop(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.a.Run(ctx); !errors.Is(err, ErrAlreadyRun) {
		t.Fatalf("Run after Run = %v, want ErrAlreadyRun", err)
	}
	if n := sinks.Load(); n != 1 {
		t.Errorf("NewSink called %d times, want 1: a refused Run must start nothing", n)
	}
	if got := len(sink.records()); got != 10 {
		t.Errorf("%d records sent, want 10", got)
	}
}

func TestValidate(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("empty config accepted")
	}
	fl := flowFor("/tmp/x.log")
	fl.Processing = []config.Option{{Name: "BOGUS"}}
	if _, err := New(Config{Flows: []config.Flow{fl}, Offsets: &offsets.Store{}, NewSink: func(config.Flow) (Sink, error) { return nil, nil }}); err == nil {
		t.Error("bad option accepted")
	}
}

// rejectSink rejects records containing "BAD" and acknowledges the rest.
type rejectSink struct {
	mu  sync.Mutex
	got []string
}

func (s *rejectSink) Put(_ context.Context, r Record, done func(error)) error {
	if bytes.Contains(r.Data, []byte("BAD")) {
		return fmt.Errorf("%w: test", ErrRecordRejected)
	}
	s.mu.Lock()
	s.got = append(s.got, string(r.Data))
	s.mu.Unlock()
	done(nil)
	return nil
}
func (s *rejectSink) Flush(context.Context) error { return nil }
func (s *rejectSink) Close(context.Context) error { return nil }

func TestRejectedAndTruncatedRecordsAreCountedAndPassed(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	content := "ok 1\nBAD 2\n" + strings.Repeat("z", 100) + "\nok 3\n"
	if err := os.WriteFile(log, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sink := &rejectSink{}
	fl := flowFor(log)
	fl.MaxRecordSizeBytes = 32
	fl.TruncatedRecordTerminator = "...\n"
	cp := filepath.Join(dir, "cp.json")
	r := startAgent(t, Config{Flows: []config.Flow{fl}, Offsets: openStore(t, cp), NewSink: func(config.Flow) (Sink, error) { return sink, nil }})
	wait.For(t, 5*time.Second, "offset at end", func() bool {
		e := openStore(t, cp).Get(fl.ID())
		return len(e) == 1 && e[0].Offset == int64(len(content))
	})
	r.stop(t)
	want := []string{"ok 1\n", strings.Repeat("z", 28) + "...\n", "ok 3\n"}
	if fmt.Sprint(sink.got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", sink.got, want)
	}
	m := r.a.metrics
	if v := testutil.ToFloat64(m.dropped.WithLabelValues(fl.ID())); v != 1 {
		t.Errorf("dropped = %v", v)
	}
	if v := testutil.ToFloat64(m.truncated.WithLabelValues(fl.ID())); v != 1 {
		t.Errorf("truncated = %v", v)
	}
}

func TestMultiLineRecordsThroughTheAgent(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	content := "2024-01-01 ERROR boom\n  at a()\n  at b()\n2024-01-01 INFO fine\n"
	if err := os.WriteFile(log, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sink := newFakeSink(0)
	fl := flowFor(log)
	fl.MultiLineStartPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} `)
	fl.Processing = []config.Option{{Name: config.OptSingleLine}}
	r := startAgent(t, Config{Flows: []config.Flow{fl}, Offsets: openStore(t, filepath.Join(dir, "cp.json")), NewSink: func(config.Flow) (Sink, error) { return sink, nil }})
	// The last record is complete only when no line follows for MaxBufferAge.
	wait.For(t, 5*time.Second, "2 records", func() bool { return len(sink.records()) >= 2 })
	r.stop(t)
	got := sink.records()
	slices.Sort(got)
	want := []string{"2024-01-01 ERROR boomat a()at b()\n", "2024-01-01 INFO fine\n"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q", got)
	}
}

func TestEndOfFileOnlyAtTheFirstStart(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.log")
	appendLines(t, old, 0, 10)
	cp := filepath.Join(dir, "cp.json")
	fl := flowFor(filepath.Join(dir, "*.log"))
	fl.InitialPosition = config.EndOfFile
	sink := newFakeSink(0)
	r := startAgent(t, Config{Flows: []config.Flow{fl}, Offsets: openStore(t, cp), NewSink: func(config.Flow) (Sink, error) { return sink, nil }})
	wait.For(t, 5*time.Second, "first save", func() bool { return openStore(t, cp).Has(fl.ID()) })
	appendLines(t, old, 10, 1)
	wait.For(t, 5*time.Second, "the new line", func() bool { return len(sink.records()) == 1 })
	r.stop(t)
	if got := sink.records(); got[0] != "line 000010\n" {
		t.Fatalf("first start sent %q; want only the line written after it", got)
	}

	// Written while the agent is down: a new file, and more in the old one.
	appendLines(t, filepath.Join(dir, "new.log"), 100, 5)
	appendLines(t, old, 11, 2)
	sink2 := newFakeSink(0)
	r2 := startAgent(t, Config{Flows: []config.Flow{fl}, Offsets: openStore(t, cp), NewSink: func(config.Flow) (Sink, error) { return sink2, nil }})
	wait.For(t, 5*time.Second, "7 records", func() bool { return len(sink2.records()) >= 7 })
	r2.stop(t)
	got := sink2.records()
	slices.Sort(got)
	want := []string{"line 000011\n", "line 000012\n", "line 000100\n", "line 000101\n", "line 000102\n", "line 000103\n", "line 000104\n"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after restart got %q", got)
	}
}

// stuckSink takes records and never acknowledges them, as a sink whose
// service does not answer; it records the deadlines of the contexts Flush
// and Close get, and Close fails what it holds.
type stuckSink struct {
	mu      sync.Mutex
	held    []func(error)
	flushBy []time.Time
	closeBy []time.Time
}

func (s *stuckSink) Put(_ context.Context, _ Record, done func(error)) error {
	s.mu.Lock()
	s.held = append(s.held, done)
	s.mu.Unlock()
	return nil
}

func (s *stuckSink) Flush(ctx context.Context) error {
	d, _ := ctx.Deadline()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushBy = append(s.flushBy, d)
	return nil
}

func (s *stuckSink) Close(ctx context.Context) error {
	d, _ := ctx.Deadline()
	s.mu.Lock()
	s.closeBy = append(s.closeBy, d)
	held := s.held
	s.held = nil
	s.mu.Unlock()
	<-ctx.Done() // waits for answers that never come
	for _, done := range held {
		done(errors.New("closed"))
	}
	return ctx.Err()
}

func (s *stuckSink) heldCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// TestShutdownHasOneDeadline stops an agent whose records are never
// acknowledged: the wait for them and the closing of the sink end at the
// same deadline, ShutdownTimeout after the context ended, not one
// ShutdownTimeout each.
func TestShutdownHasOneDeadline(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	appendLines(t, logPath, 0, 10)
	sink := &stuckSink{}
	const timeout = 300 * time.Millisecond
	r := startAgent(t, Config{Flows: []config.Flow{flowFor(logPath)}, Offsets: openStore(t, filepath.Join(dir, "cp")),
		ShutdownTimeout: timeout, NewSink: func(config.Flow) (Sink, error) { return sink, nil }})
	wait.For(t, 10*time.Second, "records put", func() bool { return sink.heldCount() == 10 })
	stopped := time.Now()
	r.stop(t)
	if len(sink.flushBy) != 1 || len(sink.closeBy) != 1 {
		t.Fatalf("Flush called %d times, Close %d times; want once each", len(sink.flushBy), len(sink.closeBy))
	}
	if sink.flushBy[0].IsZero() || !sink.closeBy[0].Equal(sink.flushBy[0]) {
		t.Errorf("Close deadline %v, want the drain's %v: one deadline for the shutdown",
			sink.closeBy[0].Format(time.StampMicro), sink.flushBy[0].Format(time.StampMicro))
	}
	if by := sink.closeBy[0]; by.Before(stopped.Add(timeout)) || by.After(time.Now()) {
		t.Errorf("shutdown deadline %v after the stop began, want ShutdownTimeout %v after the context ended", by.Sub(stopped), timeout)
	}
	cp := openStore(t, filepath.Join(dir, "cp"))
	for _, e := range cp.Get(flowFor(logPath).ID()) {
		if e.Offset != 0 {
			t.Errorf("offset %d saved for records never acknowledged", e.Offset)
		}
	}
}

// TestProgressLineSummarisesManyFiles follows 300 files while reading is
// paused (acknowledgements held back): the progress line gives totals and
// the few files furthest behind, not one entry per file.
func TestProgressLineSummarisesManyFiles(t *testing.T) {
	dir := t.TempDir()
	const files = 300
	for i := range files {
		appendLines(t, filepath.Join(dir, fmt.Sprintf("f%03d.log", i)), 0, i+1) // 12 bytes a line
	}
	sink := newFakeSink(0)
	sink.setHold(true)
	defer sink.Close(context.Background())
	core, logs := observer.New(zap.InfoLevel)
	r := startAgent(t, Config{Flows: []config.Flow{flowFor(filepath.Join(dir, "*.log"))}, Offsets: openStore(t, filepath.Join(dir, "cp")),
		MaxPendingRecords: 10, ProgressInterval: 20 * time.Millisecond, Logger: zap.New(core),
		NewSink: func(config.Flow) (Sink, error) { return sink, nil }})
	var line observer.LoggedEntry
	wait.For(t, 20*time.Second, "a progress line with every file", func() bool {
		for _, e := range logs.FilterMessage("progress").All() {
			if e.ContextMap()["files"] == int64(files) {
				line = e
				return true
			}
		}
		return false
	})
	sink.setHold(false)
	r.stop(t)

	buf, err := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()).EncodeEntry(line.Entry, line.Context)
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 1500 {
		t.Errorf("progress line of %d bytes for %d files:\n%s", buf.Len(), files, buf)
	}
	m := line.ContextMap()
	// The newest files are read last: the five largest are untouched.
	want := []any{}
	for i := files - 1; i >= files-5; i-- {
		want = append(want, fmt.Sprintf("%s=%d", filepath.Join(dir, fmt.Sprintf("f%03d.log", i)), 12*(i+1)))
	}
	if got := m["furthest_behind"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("furthest_behind %v, want %v", got, want)
	}
	if n, ok := m["files_behind"].(int64); !ok || n < files-20 {
		t.Errorf("files_behind %v, want most of the %d files", m["files_behind"], files)
	}
	if b, ok := m["bytes_behind"].(int64); !ok || b < 12*(files-20)*(files-20)/2 {
		t.Errorf("bytes_behind %v, want the bytes of the unread files", m["bytes_behind"])
	}
}
