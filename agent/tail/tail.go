// Package tail follows the files matching a glob pattern across rotations.
//
// A file is identified by its device and inode plus a fingerprint of its
// first bytes (up to Config.FingerprintSize). That covers every rotation
// scheme:
//
//   - rename (logrotate's default, create): the old file keeps its identity
//     wherever it is moved; it stays open and is read to its end before the
//     new file at the old path, and is closed once it has been quiet for
//     Config.CloseInactive without matching the pattern;
//   - copytruncate: the copy is recognised by its fingerprint and read on
//     from the position reached in the original; the truncated original is
//     read again from offset 0;
//   - truncation or rewriting in place: a file shorter than the position
//     reached, or whose first bytes changed, is read again from offset 0;
//     so is a file found shorter than its saved position (Config.Resume),
//     truncated while it was not followed, even when its first bytes are
//     the same as before (logged as a warning);
//   - a new file at a path, even one reusing a freed inode, differs in
//     fingerprint and is never taken for the old one.
//
// A path matching the pattern that is a symbolic link to a file outside the
// pattern's directory is not opened unless Config.FollowSymlinks is set: a
// link planted in a log directory must not ship the file it points to.
//
// New files are found through file system notifications (fsnotify) and by
// polling every Config.PollInterval, so a file created while notifications
// are unavailable is still seen within that interval.
package tail

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Identity tells one file from another.
type Identity struct {
	Dev, Inode uint64
	// Fingerprint is the hex SHA-256 of the first FingerprintSize bytes.
	Fingerprint     string
	FingerprintSize int
}

// Position is a saved place in a file, from which reading resumes.
type Position struct {
	Path   string
	ID     Identity
	Offset int64
}

// Kind tells what an Event reports.
type Kind int

// Event kinds, in the order a file produces them: Open, then any number of
// Data and Reset, then Close.
const (
	// Open: a file is followed from Offset.
	Open Kind = iota
	// Data: Data holds the bytes at Offset.
	Data
	// Reset: the file was truncated or rewritten; reading restarts at 0.
	Reset
	// Close: the file is no longer followed.
	Close
)

func (k Kind) String() string {
	return [...]string{"open", "data", "reset", "close"}[k]
}

// Event reports progress on one file.
type Event struct {
	// File is the same for every event of one followed file.
	File *File
	Kind Kind
	// Path is where the file was last seen.
	Path string
	// ID is the file's identity as of this event.
	ID Identity
	// Offset is where Data starts (Data), where reading starts (Open), or 0.
	Offset int64
	// Data is owned by the receiver.
	Data []byte
	// EOF is set on a Data event that reached the end of the file as it was
	// then: an incomplete last line in it is not waiting for a read.
	EOF bool
}

// File is the handle of one followed file.
type File struct {
	serial int
}

// Status describes a followed file.
type Status struct {
	Path   string
	Offset int64 // bytes read so far
	Size   int64 // file size at the last check
}

// Config controls a Tailer.
type Config struct {
	// Pattern is an absolute glob; wildcards in the file name only.
	Pattern string
	// PollInterval is how often the directory and files are checked without
	// a notification. Default 250ms.
	PollInterval time.Duration
	// StartAtEnd starts files that exist at the first scan and have no
	// saved position at their end instead of their start. Default false.
	StartAtEnd bool
	// Resume are saved positions. A file whose device, inode and fingerprint
	// match resumes at its offset; a file with another inode but the same
	// fingerprint (of at least MinCopyFingerprint bytes) resumes there too.
	Resume []Position
	// ReadSize is the most bytes read at once. Default 64 KiB.
	ReadSize int
	// FingerprintSize is how many leading bytes identify a file. Default 1 KiB.
	FingerprintSize int
	// MinCopyFingerprint is how many leading bytes two files with different
	// inodes must share to be taken for copies. Default FingerprintSize: a
	// new file that merely starts like another (a common header) must not
	// be taken for its copy, which would skip its first lines; a small file
	// copied and truncated is read again instead (duplicates, no loss).
	MinCopyFingerprint int
	// CloseInactive is how long a file that no longer matches the pattern
	// (renamed away or deleted) stays open after its last new byte.
	// Default 5s.
	CloseInactive time.Duration
	// ExcludeSuffixes are file name endings never followed. Default
	// .gz .bz2 .xz .zst .zip .lz4 (compressed rotations).
	ExcludeSuffixes []string
	// FollowSymlinks opens files whose resolved path is outside the
	// pattern's directory (reached through a symbolic link). Default false:
	// such a file is not opened, which keeps a link planted in a log
	// directory (to /etc/shadow, say) from shipping the file it points to;
	// links to files in the directory itself are followed either way.
	FollowSymlinks bool
	// OnRefused is called once each time a path is found to lead out of the
	// pattern's directory (and again if it does after having stopped to).
	// Default none.
	OnRefused func()
	// Logger receives warnings about unreadable and refused files. Default
	// no-op.
	Logger *zap.Logger
}

// Tailer follows the files matching one pattern.
type Tailer struct {
	cfg     Config
	log     *zap.Logger
	files   []*tracked
	serial  int
	recent  []truncated
	failed  map[string]bool
	refused map[string]bool // paths leading out of the directory, logged
	started bool
	scans   int
	// noNotify disables file system notifications (tests of the poll).
	noNotify bool

	mu      sync.Mutex
	status  map[*File]Status
	scanned bool
}

type tracked struct {
	h          *File
	path       string
	f          *os.File
	dev, ino   uint64
	fp         []byte // the first bytes of the file, up to FingerprintSize
	offset     int64
	size       int64
	matched    bool
	lastActive time.Time
	copyOf     *tracked
	linkedAt   time.Time
	mtime      time.Time // at discovery: orders the reading of files
	// undecidedSince is when a new file was found whose start position
	// cannot be told yet (see decide); zero once decided.
	undecidedSince time.Time
	// lineEnd is the offset just past the last newline read.
	lineEnd int64
	// announced is set once the Open event was sent.
	announced bool
	// eofSent is set when the last Data event had EOF set.
	eofSent bool
}

// copyLinkTimeout is how long a new file that starts like a followed one is
// taken for a copy in the making (copytruncate) without being read on its
// own: the original is expected to be truncated within it.
const copyLinkTimeout = 10 * time.Second

// syncCopy moves a copy's position up to the last line boundary read in its
// original, within its size.
func syncCopy(c, orig *tracked) {
	if fi, err := c.f.Stat(); err == nil {
		c.size = fi.Size()
	}
	c.offset = max(c.offset, min(orig.lineEnd, c.size))
	c.lineEnd = c.offset
}

// announce sends the Open event of a file once its start is known and it is
// not a linked copy.
func (t *Tailer) announce(ctx context.Context, out chan<- Event, tf *tracked) error {
	if tf.announced || !tf.undecidedSince.IsZero() || tf.copyOf != nil {
		return nil
	}
	tf.announced = true
	tf.lineEnd = tf.offset
	t.setStatus(tf)
	return send(ctx, out, t.event(tf, Open))
}

type truncated struct {
	fp      []byte
	lineEnd int64
	mtime   time.Time
	at      time.Time
}

// ErrInvalidPosition reports a saved position with a negative offset or
// fingerprint size.
var ErrInvalidPosition = errors.New("invalid saved position")

// ErrOutsideDirectory reports a path whose file is outside the pattern's
// directory, reached through a symbolic link.
var ErrOutsideDirectory = errors.New("resolved path leaves the directory of the pattern")

// New returns a tailer for cfg.
func New(cfg Config) (*Tailer, error) {
	if !filepath.IsAbs(cfg.Pattern) {
		return nil, fmt.Errorf("tail: pattern %q is not absolute", cfg.Pattern)
	}
	if _, err := filepath.Match(cfg.Pattern, ""); err != nil {
		return nil, fmt.Errorf("tail: pattern %q: %w", cfg.Pattern, err)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.ReadSize <= 0 {
		cfg.ReadSize = 64 << 10
	}
	if cfg.FingerprintSize <= 0 {
		cfg.FingerprintSize = 1024
	}
	if cfg.MinCopyFingerprint <= 0 || cfg.MinCopyFingerprint > cfg.FingerprintSize {
		cfg.MinCopyFingerprint = cfg.FingerprintSize
	}
	if cfg.CloseInactive <= 0 {
		cfg.CloseInactive = 5 * time.Second
	}
	if cfg.ExcludeSuffixes == nil {
		cfg.ExcludeSuffixes = []string{".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4"}
	}
	for _, p := range cfg.Resume {
		if p.Offset < 0 || p.ID.FingerprintSize < 0 {
			return nil, fmt.Errorf("tail: saved position of %s: offset %d, fingerprint size %d: %w", p.Path, p.Offset, p.ID.FingerprintSize, ErrInvalidPosition)
		}
	}
	cfg.Resume = slices.Clone(cfg.Resume)
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Tailer{cfg: cfg, log: log, failed: map[string]bool{}, refused: map[string]bool{}, status: map[*File]Status{}}, nil
}

// Status returns the state of every followed file.
func (t *Tailer) Status() []Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Status, 0, len(t.status))
	for _, s := range t.status {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Scanned reports whether the first scan is complete: every file that
// existed then has been opened (and its Open event sent), so saved
// positions not claimed by then belong to files that are gone.
func (t *Tailer) Scanned() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.scanned
}

// Run follows the files and sends events to out until ctx ends. Sending
// blocks, which pauses reading: the receiver sets the pace. Run returns nil
// when ctx ends, after closing every file.
func (t *Tailer) Run(ctx context.Context, out chan<- Event) error {
	if t.started {
		return errors.New("tail: Run called twice")
	}
	t.started = true
	defer t.closeAll()

	wake := make(chan struct{}, 1)
	stopWatch := t.watch(ctx, wake)
	defer stopWatch()

	poll := time.NewTicker(t.cfg.PollInterval)
	defer poll.Stop()
	for {
		if err := t.scan(ctx, out); err != nil {
			return nil
		}
		t.mu.Lock()
		t.scanned = true
		t.mu.Unlock()
		moved, err := t.readAll(ctx, out)
		if err != nil {
			return nil
		}
		if err := t.closeInactive(ctx, out); err != nil {
			return nil
		}
		if moved {
			select {
			case <-ctx.Done():
				return nil
			default:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// watch forwards notifications for the pattern's directory to wake. A
// directory that does not exist yet is watched once it appears (retried on
// every poll); without notifications the poll still finds everything.
func (t *Tailer) watch(ctx context.Context, wake chan<- struct{}) (stop func()) {
	if t.noNotify {
		return func() {}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.log.Warn("file notifications unavailable; polling only", zap.Error(err))
		return func() {}
	}
	dir := filepath.Dir(t.cfg.Pattern)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watching := w.Add(dir) == nil
		retry := time.NewTicker(t.cfg.PollInterval)
		defer retry.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-retry.C:
				if !watching {
					watching = w.Add(dir) == nil
				}
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Remove) && ev.Name == dir {
					watching = false
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return func() {
		cancel()
		_ = w.Close()
		wg.Wait()
	}
}

func send(ctx context.Context, out chan<- Event, ev Event) error {
	select {
	case out <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *Tailer) excluded(path string) bool {
	for _, s := range t.cfg.ExcludeSuffixes {
		if strings.HasSuffix(path, s) {
			return true
		}
	}
	return false
}

func devIno(fi os.FileInfo) (uint64, uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // Dev is not uint64 everywhere
	}
	return 0, 0
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (tf *tracked) identity() Identity {
	return Identity{Dev: tf.dev, Inode: tf.ino, Fingerprint: hashHex(tf.fp), FingerprintSize: len(tf.fp)}
}

func (t *Tailer) event(tf *tracked, k Kind) Event {
	return Event{File: tf.h, Kind: k, Path: tf.path, ID: tf.identity(), Offset: tf.offset}
}

// readHead returns up to n leading bytes of f.
func readHead(f *os.File, n int) ([]byte, error) {
	b := make([]byte, n)
	m, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:m], nil
}

// scan checks the followed files for truncation and growth, then looks for
// new files.
func (t *Tailer) scan(ctx context.Context, out chan<- Event) error {
	now := time.Now()
	for _, tf := range t.files {
		if err := t.check(ctx, out, tf, now); err != nil {
			return err
		}
	}
	t.recent = slices.DeleteFunc(t.recent, func(r truncated) bool { return now.Sub(r.at) > time.Minute })

	paths, _ := filepath.Glob(t.cfg.Pattern) // the pattern was validated in New
	byDevIno := map[[2]uint64]*tracked{}
	for _, tf := range t.files {
		tf.matched = false
		byDevIno[[2]uint64{tf.dev, tf.ino}] = tf
	}
	first := t.scans == 0
	t.scans++
	type found struct {
		path string
		fi   os.FileInfo
	}
	var fresh []found
	for _, p := range paths {
		if t.excluded(p) {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		fresh = append(fresh, found{p, fi})
	}
	// Older files first: rotated generations are read before the live file.
	slices.SortStableFunc(fresh, func(a, b found) int { return a.fi.ModTime().Compare(b.fi.ModTime()) })
	refusedNow := map[string]bool{}
	defer func() { t.refused = refusedNow }()
	for _, fd := range fresh {
		p, fi := fd.path, fd.fi
		dev, ino := devIno(fi)
		if tf, ok := byDevIno[[2]uint64{dev, ino}]; ok {
			tf.matched, tf.path = true, p
			tf.lastActive = now
			continue
		}
		tf, err := t.open(p, first)
		if errors.Is(err, ErrOutsideDirectory) {
			refusedNow[p] = true
			if !t.refused[p] {
				t.log.Warn("not following a symbolic link whose target leaves the directory of the pattern (followSymlinks allows it)",
					zap.String("path", p), zap.Error(err))
				if t.cfg.OnRefused != nil {
					t.cfg.OnRefused()
				}
			}
			continue
		}
		if err != nil {
			if !t.failed[p] {
				t.log.Warn("cannot open file; will retry", zap.String("path", p), zap.Error(err))
				t.failed[p] = true
			}
			continue
		}
		delete(t.failed, p)
		byDevIno[[2]uint64{tf.dev, tf.ino}] = tf
		t.files = append(t.files, tf)
		if err := t.announce(ctx, out, tf); err != nil {
			return err
		}
	}
	return nil
}

// check detects truncation or rewriting of a followed file and extends its
// fingerprint as it grows.
func (t *Tailer) check(ctx context.Context, out chan<- Event, tf *tracked, now time.Time) error {
	fi, err := tf.f.Stat()
	if err != nil {
		return nil
	}
	tf.size = fi.Size()
	if !tf.undecidedSince.IsZero() {
		head, err := readHead(tf.f, t.cfg.FingerprintSize)
		if err != nil {
			return nil
		}
		tf.fp = head
		off, ok := t.decide(tf, false)
		if !ok {
			return nil
		}
		tf.offset, tf.undecidedSince = off, time.Time{}
		return t.announce(ctx, out, tf)
	}
	if !tf.announced {
		return nil // a linked copy: its original is checked
	}
	reset := tf.size < tf.offset || tf.size < int64(len(tf.fp))
	if !reset && len(tf.fp) > 0 {
		head, err := readHead(tf.f, len(tf.fp))
		reset = err == nil && !bytes.Equal(head, tf.fp)
	}
	if reset {
		if len(tf.fp) >= t.cfg.MinCopyFingerprint {
			t.recent = append(t.recent, truncated{fp: tf.fp, lineEnd: tf.lineEnd, mtime: tf.mtime, at: now})
		}
		for _, c := range t.files {
			if c.copyOf == tf {
				syncCopy(c, tf)
				c.copyOf = nil
				c.mtime = tf.mtime.Add(-time.Nanosecond) // read the copy's rest first
				if err := t.announce(ctx, out, c); err != nil {
					return err
				}
			}
		}
		tf.offset, tf.lineEnd, tf.fp, tf.lastActive = 0, 0, nil, now
		if err := send(ctx, out, t.event(tf, Reset)); err != nil {
			return err
		}
	}
	if len(tf.fp) < t.cfg.FingerprintSize && tf.size > int64(len(tf.fp)) {
		if head, err := readHead(tf.f, t.cfg.FingerprintSize); err == nil && bytes.HasPrefix(head, tf.fp) {
			tf.fp = head
		}
	}
	t.setStatus(tf)
	return nil
}

// open starts following path and decides where reading starts.
func (t *Tailer) open(path string, first bool) (*tracked, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !t.cfg.FollowSymlinks {
		if err := inDirectory(path, fi); err != nil {
			f.Close()
			return nil, err
		}
	}
	head, err := readHead(f, t.cfg.FingerprintSize)
	if err != nil {
		f.Close()
		return nil, err
	}
	dev, ino := devIno(fi)
	t.serial++
	tf := &tracked{h: &File{serial: t.serial}, path: path, f: f, dev: dev, ino: ino, fp: head, size: fi.Size(), matched: true, lastActive: time.Now()}
	tf.mtime = fi.ModTime()
	off, ok := t.decide(tf, first)
	if !ok {
		tf.undecidedSince = time.Now()
	}
	tf.offset = off
	return tf, nil
}

// inDirectory checks that the file opened at path, with info fi, is in the
// directory of path once every symbolic link is resolved. The resolved path
// is checked to name the opened file itself, so a link changed between the
// opening and the check is refused rather than let through.
func inDirectory(path string, fi os.FileInfo) error {
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return err
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if filepath.Dir(resolved) != dir {
		return fmt.Errorf("%w: %s", ErrOutsideDirectory, resolved)
	}
	rfi, err := os.Stat(resolved)
	if err != nil {
		return err
	}
	if !os.SameFile(fi, rfi) {
		return fmt.Errorf("%w: %s changed while opened", ErrOutsideDirectory, path)
	}
	return nil
}

// decide picks where reading of a newly found file starts. It reports false
// while that cannot be told yet: the file is a prefix (possibly empty) of a
// followed file's first bytes, as a copy being made is. Such a file is looked
// at again on every scan, for at most copyLinkTimeout.
func (t *Tailer) decide(tf *tracked, first bool) (int64, bool) {
	// A saved position of this very file; else of a copy of it (a file
	// copied and truncated while the agent was down).
	for _, sameInode := range []bool{true, false} {
		for i, p := range t.cfg.Resume {
			if p.ID.FingerprintSize > len(tf.fp) || hashHex(tf.fp[:p.ID.FingerprintSize]) != p.ID.Fingerprint {
				continue
			}
			same := p.ID.Dev == tf.dev && p.ID.Inode == tf.ino
			if same == sameInode && (same || p.ID.FingerprintSize >= t.cfg.MinCopyFingerprint) {
				t.cfg.Resume = slices.Delete(t.cfg.Resume, i, i+1)
				if tf.size < p.Offset {
					// Truncated while not followed, then refilled with the
					// same first bytes: everything in it is new.
					t.log.Warn("file is shorter than its saved offset: truncated; reading it again from the start",
						zap.String("path", tf.path), zap.Int64("savedOffset", p.Offset), zap.Int64("size", tf.size))
					return 0, true
				}
				return p.Offset, true
			}
		}
	}
	if first {
		// Files present at the start are not copies.
		if t.cfg.StartAtEnd {
			return tf.size, true
		}
		return 0, true
	}
	// A copy of a followed file (copytruncate) or of one just truncated.
	undecided := false
	for _, o := range t.files {
		if o == tf || !o.undecidedSince.IsZero() {
			continue
		}
		n := min(len(o.fp), len(tf.fp))
		if !bytes.Equal(o.fp[:n], tf.fp[:n]) {
			continue
		}
		if n >= t.cfg.MinCopyFingerprint {
			tf.copyOf, tf.linkedAt = o, time.Now()
			return min(o.lineEnd, tf.size), true
		}
		undecided = undecided || len(tf.fp) < len(o.fp)
	}
	for _, r := range t.recent {
		n := min(len(r.fp), len(tf.fp))
		if !bytes.Equal(r.fp[:n], tf.fp[:n]) {
			continue
		}
		if n >= t.cfg.MinCopyFingerprint {
			tf.mtime = r.mtime.Add(-time.Nanosecond) // read before the truncated original
			return min(r.lineEnd, tf.size), true
		}
		undecided = undecided || len(tf.fp) < len(r.fp)
	}
	if undecided && (tf.undecidedSince.IsZero() || time.Since(tf.undecidedSince) < copyLinkTimeout) {
		return 0, false
	}
	return 0, true
}

// readAll reads every file to its end: first files that no longer match
// the pattern (the rest of a rotated file goes before its successor), then
// the others, older files (by modification time when found) first. It reports whether any byte was
// read.
func (t *Tailer) readAll(ctx context.Context, out chan<- Event) (bool, error) {
	order := slices.Clone(t.files)
	slices.SortStableFunc(order, func(a, b *tracked) int {
		switch {
		case a.matched == b.matched:
			return a.mtime.Compare(b.mtime)
		case !a.matched:
			return -1
		default:
			return 1
		}
	})
	moved := false
	for _, tf := range order {
		if !tf.undecidedSince.IsZero() {
			continue
		}
		if c := tf.copyOf; c != nil {
			syncCopy(tf, c)
			if time.Since(tf.linkedAt) < copyLinkTimeout {
				continue // the original is read instead
			}
			tf.copyOf = nil
			if err := t.announce(ctx, out, tf); err != nil {
				return moved, err
			}
		}
		if !tf.announced {
			continue
		}
		limit := int64(-1)
		if tf.matched {
			limit = 64 * int64(t.cfg.ReadSize) // fairness among live files
		}
		n, err := t.read(ctx, out, tf, limit)
		if n > 0 {
			moved = true
		}
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

func (t *Tailer) read(ctx context.Context, out chan<- Event, tf *tracked, limit int64) (int64, error) {
	var total int64
	for limit < 0 || total < limit {
		buf := make([]byte, t.cfg.ReadSize)
		n, err := tf.f.ReadAt(buf, tf.offset)
		if n > 0 && len(tf.fp) > 0 {
			// Bytes read after the file was truncated and refilled would be
			// a piece of unrelated content: drop them; check resets the file.
			if head, herr := readHead(tf.f, len(tf.fp)); herr != nil || !bytes.Equal(head, tf.fp) {
				return total, nil
			}
		}
		if n > 0 {
			ev := t.event(tf, Data)
			ev.Data = buf[:n]
			if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
				tf.lineEnd = tf.offset + int64(i) + 1
			}
			tf.offset += int64(n)
			tf.size = max(tf.size, tf.offset)
			ev.EOF = n < len(buf)
			tf.eofSent = ev.EOF
			tf.lastActive = time.Now()
			total += int64(n)
			t.setStatus(tf)
			if err := send(ctx, out, ev); err != nil {
				return total, err
			}
		}
		if n == 0 && errors.Is(err, io.EOF) && !tf.eofSent && tf.offset > 0 {
			// The previous read ended exactly at the end of the file.
			tf.eofSent = true
			ev := t.event(tf, Data)
			ev.EOF = true
			if err := send(ctx, out, ev); err != nil {
				return total, err
			}
		}
		if err != nil || n < len(buf) {
			if err != nil && !errors.Is(err, io.EOF) {
				t.log.Warn("read failed; will retry", zap.String("path", tf.path), zap.Error(err))
			}
			return total, nil
		}
	}
	return total, nil
}

// closeInactive stops following files that no longer match the pattern and
// have had nothing new for CloseInactive.
func (t *Tailer) closeInactive(ctx context.Context, out chan<- Event) error {
	now := time.Now()
	keep := t.files[:0]
	var closed []*tracked
	for _, tf := range t.files {
		if !tf.matched && tf.offset >= tf.size && now.Sub(tf.lastActive) >= t.cfg.CloseInactive {
			closed = append(closed, tf)
			continue
		}
		keep = append(keep, tf)
	}
	t.files = keep
	for _, tf := range closed {
		for _, c := range t.files {
			if c.copyOf == tf {
				syncCopy(c, tf)
				c.copyOf = nil
				if err := t.announce(ctx, out, c); err != nil {
					return err
				}
			}
		}
		tf.f.Close()
		t.mu.Lock()
		delete(t.status, tf.h)
		t.mu.Unlock()
		if !tf.announced {
			continue
		}
		if err := send(ctx, out, t.event(tf, Close)); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tailer) setStatus(tf *tracked) {
	t.mu.Lock()
	t.status[tf.h] = Status{Path: tf.path, Offset: tf.offset, Size: max(tf.size, tf.offset)}
	t.mu.Unlock()
}

func (t *Tailer) closeAll() {
	for _, tf := range t.files {
		tf.f.Close()
	}
	t.files = nil
}
