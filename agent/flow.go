package agent

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/lines"
	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/agent/process"
	"github.com/kinesisgo/kinesis/agent/tail"
	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
)

// maxRetryBackoff caps the ceiling of the wait before a record the sink
// gave up on is put again (see Config.RetryBackoff).
const maxRetryBackoff = 30 * time.Second

// refusedBackoff is the wait before a record the sink refused to take
// (Sink.Put returned an error) is offered again: random up to 10ms after
// the first refusal, the ceiling doubling with each refusal up to 1s.
var refusedBackoff = backoff.Policy{Base: 10 * time.Millisecond, Max: time.Second}

// flow runs one config.Flow: tailer, splitting, processing and shipping.
type flow struct {
	cfg    config.Flow
	acfg   *Config
	id     string
	log    *zap.Logger
	m      flowMetrics
	chain  *process.Chain
	tailer *tail.Tailer
	saved  []offsets.Entry

	wake chan struct{}

	mu           sync.Mutex // guards what acknowledgements touch
	files        map[*tail.File]*fileState
	pendingRecs  int
	pendingBytes int
	retries      []*item
	sentRecords  int64
	sentBytes    int64
	lastStats    map[*tail.File]lines.Stats
	pausedUntil  time.Time // the stream was unavailable: put nothing before
	unavailable  string    // the error code of the last pause; "" once a record got through
}

type fileState struct {
	path     string
	id       tail.Identity
	split    *lines.Splitter
	gen      *tracker
	lastData time.Time
	atEOF    bool // the last read reached the end of the file
}

// item is one record between the agent and the sink.
type item struct {
	rec       Record
	gen       *tracker
	seq       uint64
	attempt   int // times the sink gave up on it
	notBefore time.Time
}

func newFlow(fc config.Flow, acfg *Config, m *metrics) (*flow, error) {
	chain, err := process.New(fc.Processing)
	if err != nil {
		return nil, err
	}
	id := fc.ID()
	f := &flow{
		cfg:       fc,
		acfg:      acfg,
		id:        id,
		log:       acfg.Logger.With(zap.String("flow", id)),
		m:         m.flow(id),
		chain:     chain,
		saved:     acfg.Offsets.Get(id),
		wake:      make(chan struct{}, 1),
		files:     map[*tail.File]*fileState{},
		lastStats: map[*tail.File]lines.Stats{},
	}
	chain.OnInvalidUTF8 = f.m.invalidUTF8.Inc
	resume := make([]tail.Position, 0, len(f.saved))
	for _, e := range f.saved {
		resume = append(resume, tail.Position{Path: e.Path, Offset: e.Offset, ID: tail.Identity{
			Dev: e.Dev, Inode: e.Inode, Fingerprint: e.Fingerprint, FingerprintSize: e.FingerprintSize}})
	}
	f.tailer, err = tail.New(tail.Config{
		Pattern:      fc.FilePattern,
		PollInterval: fc.PollInterval,
		// END_OF_FILE applies to the files found at the first start of a
		// flow; once it has run, a file without a saved position at start
		// appeared while the agent was down and is read from its start.
		StartAtEnd:     fc.InitialPosition == config.EndOfFile && !acfg.Offsets.Has(id),
		Resume:         resume,
		CloseInactive:  acfg.CloseInactive,
		FollowSymlinks: fc.FollowSymlinks,
		OnRefused:      f.m.refused.Inc,
		Logger:         f.log,
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (f *flow) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run reads and ships until ctx ends; Run then drains the flow.
func (f *flow) run(ctx context.Context, sink Sink) {
	events := make(chan tail.Event)
	tailCtx, stopTail := context.WithCancel(ctx)
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		_ = f.tailer.Run(tailCtx, events)
	}()
	defer func() {
		stopTail()
		<-tailDone
	}()
	f.pump(ctx, sink, events)
}

// pump ships the records of the tailer's events, puts failed records again
// once their backoff has passed and sends records held for MaxBufferAge,
// until ctx ends.
func (f *flow) pump(ctx context.Context, sink Sink, events <-chan tail.Event) {
	tickEvery := min(max(f.cfg.MaxBufferAge/4, 10*time.Millisecond), 100*time.Millisecond)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	progress := time.NewTicker(f.acfg.ProgressInterval)
	defer progress.Stop()
	gauges := time.NewTicker(time.Second)
	defer gauges.Stop()

	for ctx.Err() == nil {
		if err := f.runRetries(ctx, sink); err != nil {
			break
		}
		var in <-chan tail.Event
		if !f.full() {
			in = events
		}
		select {
		case <-ctx.Done():
		case ev := <-in:
			_ = f.handle(ctx, sink, ev)
		case <-f.wake:
		case <-tick.C:
			_ = f.flushAged(ctx, sink)
		case <-progress.C:
			f.logProgress()
		case <-gauges.C:
			f.updateGauges()
		}
	}
}

// drain waits for in-flight records, putting failed ones again, until none
// is left or ctx ends (the shutdown deadline).
func (f *flow) drain(ctx context.Context, sink Sink) {
	_ = sink.Flush(ctx)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		f.mu.Lock()
		n := f.pendingRecs
		f.mu.Unlock()
		if n == 0 {
			return
		}
		f.mu.Lock()
		paused := time.Now().Before(f.pausedUntil)
		f.mu.Unlock()
		if paused {
			f.log.Warn("stream unavailable at shutdown: records not acknowledged will be read again at the next start", zap.Int("records", n))
			return
		}
		if err := f.runRetries(ctx, sink); err != nil {
			break
		}
		select {
		case <-ctx.Done():
			f.log.Warn("shutdown timeout: records not acknowledged will be read again at the next start", zap.Int("records", n))
			return
		case <-f.wake:
		case <-t.C:
		}
	}
}

// full reports whether reading must pause: too many records pending, or
// the stream unavailable.
func (f *flow) full() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pendingRecs >= f.acfg.MaxPendingRecords || f.pendingBytes >= f.acfg.MaxPendingBytes ||
		time.Now().Before(f.pausedUntil)
}

// unavailableCodes are the errors that say a flow's stream cannot be
// written however often it is tried, until an operator acts: the stream
// (or delivery stream) does not exist, or the credentials may not write
// it.
var unavailableCodes = map[string]bool{
	"ResourceNotFoundException": true,
	"AccessDeniedException":     true,
}

// pauseIfUnavailable reports whether err says the stream is unavailable
// (unavailableCodes). If so the flow pauses for UnavailableBackoff, unless
// it is paused already: it puts nothing and reads nothing until then. The
// first error of each pause is logged and counted.
func (f *flow) pauseIfUnavailable(err error) bool {
	code := awserr.Code(err)
	if !unavailableCodes[code] {
		return false
	}
	now := time.Now()
	f.mu.Lock()
	if now.Before(f.pausedUntil) {
		f.mu.Unlock()
		return true
	}
	f.pausedUntil, f.unavailable = now.Add(f.acfg.UnavailableBackoff), code
	f.mu.Unlock()
	f.m.unavailable(code).Inc()
	f.log.Error("the stream cannot be written: it does not exist or access is denied; the flow pauses before trying again",
		zap.String("stream", f.streamName()), zap.String("code", code), zap.Duration("retryIn", f.acfg.UnavailableBackoff), zap.Error(err))
	return true
}

func (f *flow) streamName() string {
	if f.cfg.Firehose() {
		return f.cfg.DeliveryStream
	}
	return f.cfg.Stream
}

func (f *flow) handle(ctx context.Context, sink Sink, ev tail.Event) error {
	f.mu.Lock()
	st := f.files[ev.File]
	if st != nil {
		st.path, st.id = ev.Path, ev.ID
	}
	f.mu.Unlock()
	switch ev.Kind {
	case tail.Open:
		st = &fileState{path: ev.Path, id: ev.ID, split: f.newSplitter(ev.Offset), gen: &tracker{acked: ev.Offset}}
		f.mu.Lock()
		f.files[ev.File] = st
		f.mu.Unlock()
		f.log.Info("following file", zap.String("path", ev.Path), zap.Int64("offset", ev.Offset))
	case tail.Data:
		if st == nil {
			return nil
		}
		st.lastData, st.atEOF = time.Now(), ev.EOF
		return f.write(ctx, sink, ev.File, st, ev.Data)
	case tail.Reset:
		if st == nil {
			return nil
		}
		f.log.Info("file truncated or replaced; reading it again from the start", zap.String("path", ev.Path))
		if err := f.flush(ctx, sink, ev.File, st); err != nil {
			return err
		}
		f.mu.Lock()
		st.split, st.gen = f.newSplitter(0), &tracker{}
		f.mu.Unlock()
	case tail.Close:
		if st == nil {
			return nil
		}
		err := f.flush(ctx, sink, ev.File, st)
		f.mu.Lock()
		delete(f.files, ev.File)
		delete(f.lastStats, ev.File)
		f.mu.Unlock()
		f.log.Info("file done", zap.String("path", ev.Path))
		return err
	}
	return nil
}

func (f *flow) newSplitter(start int64) *lines.Splitter {
	return lines.New(lines.Config{
		SkipHeaderLines: f.cfg.SkipHeaderLines,
		MultiLineStart:  f.cfg.MultiLineStartPattern,
		MaxRecordSize:   f.cfg.MaxRecordSizeBytes,
		Terminator:      f.cfg.TruncatedRecordTerminator,
		Split:           f.cfg.LongLineAction == config.LongLineSplit,
	}, start)
}

func (f *flow) write(ctx context.Context, sink Sink, h *tail.File, st *fileState, data []byte) error {
	var recs []lines.Record
	st.split.Write(data, func(r lines.Record) { recs = append(recs, r) })
	f.countSplit(h, st)
	return f.shipAll(ctx, sink, st, recs)
}

func (f *flow) flush(ctx context.Context, sink Sink, h *tail.File, st *fileState) error {
	var recs []lines.Record
	st.split.Flush(func(r lines.Record) { recs = append(recs, r) })
	f.countSplit(h, st)
	return f.shipAll(ctx, sink, st, recs)
}

// flushAged sends held partial lines and multi-line records whose file has
// had no new bytes for MaxBufferAge.
func (f *flow) flushAged(ctx context.Context, sink Sink) error {
	f.mu.Lock()
	var due []*tail.File
	for h, st := range f.files {
		if st.atEOF && st.split.Pending() && time.Since(st.lastData) >= f.cfg.MaxBufferAge {
			due = append(due, h)
		}
	}
	f.mu.Unlock()
	for _, h := range due {
		f.mu.Lock()
		st := f.files[h]
		f.mu.Unlock()
		if err := f.flush(ctx, sink, h, st); err != nil {
			return err
		}
	}
	return nil
}

func (f *flow) countSplit(h *tail.File, st *fileState) {
	s := st.split.Stats()
	f.mu.Lock()
	prev := f.lastStats[h]
	f.lastStats[h] = s
	f.mu.Unlock()
	if s.HeaderLines < prev.HeaderLines { // a new splitter after a reset
		prev = lines.Stats{}
	}
	f.m.headerLines.Add(float64(s.HeaderLines - prev.HeaderLines))
	f.m.truncated.Add(float64(s.Truncated - prev.Truncated))
	f.m.split.Add(float64(s.Split - prev.Split))
}

func (f *flow) shipAll(ctx context.Context, sink Sink, st *fileState, recs []lines.Record) error {
	for _, r := range recs {
		if err := f.ship(ctx, sink, st, r); err != nil {
			return err
		}
	}
	return nil
}

// ship processes one record and puts it.
func (f *flow) ship(ctx context.Context, sink Sink, st *fileState, r lines.Record) error {
	data, err := f.chain.Apply(r.Data)
	if err != nil {
		f.m.unparsed.Inc()
		if f.cfg.DropUnparsedRecords && errors.Is(err, process.ErrUnparsed) {
			f.m.dropped.Inc()
			f.mu.Lock()
			st.gen.ack(st.gen.add(r.End))
			f.mu.Unlock()
			return nil
		}
		data = r.Data
	}
	if max := f.cfg.MaxRecordSizeBytes; len(data) > max { // processing made it longer
		term := f.cfg.TruncatedRecordTerminator
		data = append(data[:max-len(term):max-len(term)], term...)
		f.m.truncated.Inc()
	}
	if err := f.waitRoom(ctx, sink); err != nil {
		return err
	}
	it := &item{rec: Record{PartitionKey: f.partitionKey(r.Data, data), Data: data}, gen: st.gen}
	f.mu.Lock()
	it.seq = st.gen.add(r.End)
	f.pendingRecs++
	f.pendingBytes += len(data)
	f.mu.Unlock()
	f.m.pending.Inc()
	return f.put(ctx, sink, it)
}

// waitRoom blocks while MaxPendingRecords or MaxPendingBytes are reached,
// putting failed records again meanwhile.
func (f *flow) waitRoom(ctx context.Context, sink Sink) error {
	var t *time.Ticker
	for {
		// Records put again go first; they may fill the flow or find the
		// stream unavailable.
		if err := f.runRetries(ctx, sink); err != nil {
			return err
		}
		if !f.full() {
			return nil
		}
		if t == nil {
			t = time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.wake:
		case <-t.C:
		}
	}
}

// partitionKey returns the key of a record read as raw and processed into
// data; Firehose records have none.
func (f *flow) partitionKey(raw, data []byte) string {
	switch f.cfg.PartitionKeyOption {
	case config.PartitionKeyDeterministic:
		sum := md5.Sum(data)
		return hex.EncodeToString(sum[:])
	case config.PartitionKeyField:
		if k := fieldKey(data, f.cfg.PartitionKeyField); k != "" {
			return k
		}
		f.m.keyFallbacks.Inc()
	case config.PartitionKeyRegex:
		if m := f.cfg.PartitionKeyPattern.FindSubmatch(raw); len(m) > 1 && len(m[1]) > 0 {
			return validKey(string(m[1]))
		}
		f.m.keyFallbacks.Inc()
	}
	if f.cfg.Firehose() {
		return ""
	}
	var b strings.Builder
	b.Grow(32)
	b.WriteString(strconv.FormatUint(rand.Uint64(), 16))
	b.WriteString(strconv.FormatUint(rand.Uint64(), 16))
	return b.String()
}

// put hands it to the sink, waiting while the sink refuses it.
func (f *flow) put(ctx context.Context, sink Sink, it *item) error {
	for refused := 1; ; refused++ {
		err := sink.Put(ctx, it.rec, func(err error) { f.done(it, err) })
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrRecordRejected) {
			f.log.Warn("record rejected; dropped", zap.Int("bytes", len(it.rec.Data)), zap.Error(err))
			f.m.dropped.Inc()
			f.mu.Lock()
			it.gen.ack(it.seq)
			f.mu.Unlock()
			f.forget(it)
			return nil
		}
		if ctx.Err() != nil {
			f.forget(it)
			return ctx.Err()
		}
		if f.pauseIfUnavailable(err) {
			// Put again by runRetries once the pause is over; the loop
			// meanwhile goes on (logging progress, noticing ctx's end).
			f.mu.Lock()
			it.notBefore = f.pausedUntil
			f.retries = append(f.retries, it)
			f.mu.Unlock()
			return nil
		}
		f.log.Debug("sink refused a record; waiting", zap.Error(err))
		if err := backoff.Sleep(ctx, refusedBackoff.Delay(refused)); err != nil {
			f.forget(it)
			return err
		}
	}
}

// forget drops it from the pending counts: it was never taken, and stays
// unacknowledged so its offset is not saved.
func (f *flow) forget(it *item) {
	f.mu.Lock()
	f.pendingRecs--
	f.pendingBytes -= len(it.rec.Data)
	f.mu.Unlock()
	f.m.pending.Dec()
}

// done is the sink's callback.
func (f *flow) done(it *item, err error) {
	paused := err != nil && f.pauseIfUnavailable(err)
	f.mu.Lock()
	if err != nil {
		it.attempt++
		p := backoff.Policy{Base: f.acfg.RetryBackoff, Max: maxRetryBackoff}
		it.notBefore = time.Now().Add(p.Delay(it.attempt))
		if paused && it.notBefore.Before(f.pausedUntil) {
			it.notBefore = f.pausedUntil
		}
		f.retries = append(f.retries, it)
		f.mu.Unlock()
		f.m.failed.Inc()
		f.poke()
		return
	}
	it.gen.ack(it.seq)
	f.pendingRecs--
	f.pendingBytes -= len(it.rec.Data)
	f.sentRecords++
	f.sentBytes += int64(len(it.rec.Data))
	recovered := f.unavailable
	f.unavailable = ""
	f.mu.Unlock()
	if recovered != "" {
		f.log.Info("the stream takes records again", zap.String("stream", f.streamName()), zap.String("after", recovered))
	}
	f.m.pending.Dec()
	f.m.sentRecords.Inc()
	f.m.sentBytes.Add(float64(len(it.rec.Data)))
	if f.full() {
		return
	}
	f.poke()
}

// runRetries puts again the records whose backoff has passed.
func (f *flow) runRetries(ctx context.Context, sink Sink) error {
	f.mu.Lock()
	if len(f.retries) == 0 {
		f.mu.Unlock()
		return nil
	}
	now := time.Now()
	var due []*item
	keep := f.retries[:0]
	for _, it := range f.retries {
		if it.notBefore.After(now) {
			keep = append(keep, it)
		} else {
			due = append(due, it)
		}
	}
	f.retries = keep
	f.mu.Unlock()
	for i, it := range due {
		if err := f.put(ctx, sink, it); err != nil {
			// forget was called for it; the rest stay pending: count them out too.
			for _, rest := range due[i+1:] {
				f.forget(rest)
			}
			return err
		}
		f.mu.Lock()
		if until := f.pausedUntil; now.Before(until) && i+1 < len(due) {
			// The stream became unavailable: the rest wait for the pause.
			for _, rest := range due[i+1:] {
				rest.notBefore = until
			}
			f.retries = append(f.retries, due[i+1:]...)
			f.mu.Unlock()
			return nil
		}
		f.mu.Unlock()
	}
	return nil
}

// entries returns the positions to save, or false before the tailer's first
// scan (when positions of files not yet opened must be kept as they are).
func (f *flow) entries() ([]offsets.Entry, bool) {
	if !f.tailer.Scanned() {
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]offsets.Entry, 0, len(f.files))
	for _, st := range f.files {
		out = append(out, offsets.Entry{
			Path: st.path, Dev: st.id.Dev, Inode: st.id.Inode,
			Fingerprint: st.id.Fingerprint, FingerprintSize: st.id.FingerprintSize,
			Offset: st.gen.acked,
		})
	}
	sortEntries(out)
	return out, true
}

// updateGauges sets the files and bytes-behind gauges.
func (f *flow) updateGauges() {
	status := f.tailer.Status()
	var total int64
	for _, s := range status {
		total += s.Size - s.Offset
	}
	f.m.files.Set(float64(len(status)))
	f.m.behind.Set(float64(total))
}

// progressFiles is how many of the files furthest behind the progress line
// names: a flow may follow thousands of files, and the line stays short.
const progressFiles = 5

// logProgress logs one line: files followed, records and bytes
// acknowledged, records pending, the bytes not yet read in all files and in
// how many, and the progressFiles files furthest behind with their bytes not
// yet read.
func (f *flow) logProgress() {
	status := f.tailer.Status()
	var total int64
	behind := make([]tail.Status, 0, len(status))
	for _, s := range status {
		if b := s.Size - s.Offset; b > 0 {
			total += b
			behind = append(behind, s)
		}
	}
	f.m.files.Set(float64(len(status)))
	f.m.behind.Set(float64(total))
	slices.SortFunc(behind, func(a, b tail.Status) int {
		if c := cmp.Compare(b.Size-b.Offset, a.Size-a.Offset); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	furthest := make([]string, 0, progressFiles)
	for _, s := range behind[:min(len(behind), progressFiles)] {
		furthest = append(furthest, s.Path+"="+strconv.FormatInt(s.Size-s.Offset, 10))
	}
	f.mu.Lock()
	recs, bytes, pending := f.sentRecords, f.sentBytes, f.pendingRecs
	f.mu.Unlock()
	f.log.Info("progress",
		zap.Int("files", len(status)),
		zap.Int64("records_sent", recs),
		zap.Int64("bytes_sent", bytes),
		zap.Int("records_pending", pending),
		zap.Int64("bytes_behind", total),
		zap.Int("files_behind", len(behind)),
		zap.Strings("furthest_behind", furthest))
}

// maxKeyChars is Kinesis's limit on a partition key: 256 Unicode characters.
const maxKeyChars = 256

// fieldKey returns the partition key that field of the JSON object data
// gives: a string as it is, a number or boolean as written; "" when data
// is not an object, has no such field, or holds null, an object or an array
// there.
func fieldKey(data []byte, field string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return ""
	}
	v, ok := obj[field]
	if !ok || len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return ""
		}
		return validKey(s)
	case '{', '[', 'n':
		return ""
	}
	return validKey(string(v))
}

// validKey makes s a valid partition key: valid UTF-8, at most 256
// characters; "" stays "" (the caller falls back to a random key).
func validKey(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= maxKeyChars {
		return s
	}
	n := 0
	for i := range s {
		if n == maxKeyChars {
			return s[:i]
		}
		n++
	}
	return s
}
