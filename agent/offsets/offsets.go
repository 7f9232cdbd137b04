// Package offsets keeps, per flow and per file, the offset up to which the
// file's records have been acknowledged by Kinesis. The store is one JSON
// file, replaced atomically (temporary file, fsync, rename, fsync of the
// directory) with mode 0600, so a crash leaves either the old or the new
// contents, never a mix.
package offsets

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Entry is the acknowledged position in one file.
type Entry struct {
	// Path is where the file was last seen (informational).
	Path string `json:"path"`
	// Dev and Inode identify the file on its file system.
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
	// Fingerprint is a hash of the first FingerprintSize bytes of the file,
	// telling a file from a later one that reuses its inode.
	Fingerprint     string `json:"fingerprint"`
	FingerprintSize int    `json:"fingerprintSize"`
	// Offset is the byte offset just past the last acknowledged record.
	Offset int64 `json:"offset"`
}

type document struct {
	Version int                `json:"version"`
	Flows   map[string][]Entry `json:"flows"`
}

// Store holds the entries of every flow. It is safe for concurrent use.
// The zero Store, not opened from a file, keeps its entries in memory only:
// Save does nothing.
type Store struct {
	path  string
	mu    sync.Mutex
	flows map[string][]Entry
	dirty bool
}

// Open reads the store at path. A missing file is an empty store; its
// directory is created (mode 0700) if needed.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	s := &Store{path: path, flows: map[string][]Entry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	flows, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("offsets: %s: %w", path, err)
	}
	s.flows = flows
	return s, nil
}

// ErrCorrupt reports a checkpoint file whose content this agent never
// writes: not JSON of the expected shape, or an entry with a negative offset
// or fingerprint size.
var ErrCorrupt = errors.New("not a checkpoint file of this agent")

// parse decodes a checkpoint file's content.
func parse(b []byte) (map[string][]Entry, error) {
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("unsupported version %d", doc.Version)
	}
	for _, flow := range slices.Sorted(maps.Keys(doc.Flows)) {
		for i, e := range doc.Flows[flow] {
			switch {
			case e.Offset < 0:
				return nil, fmt.Errorf("%w: flow %q entry %d (%s): offset %d", ErrCorrupt, flow, i, e.Path, e.Offset)
			case e.FingerprintSize < 0:
				return nil, fmt.Errorf("%w: flow %q entry %d (%s): fingerprintSize %d", ErrCorrupt, flow, i, e.Path, e.FingerprintSize)
			}
		}
	}
	if doc.Flows == nil {
		doc.Flows = map[string][]Entry{}
	}
	return doc.Flows, nil
}

// Path returns the file the store is saved to.
func (s *Store) Path() string { return s.path }

// Get returns a copy of the entries of flow.
func (s *Store) Get(flow string) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.flows[flow])
}

// Has reports whether flow has been saved before, even with no entries:
// then a file found at start without an entry is new, not pre-existing.
func (s *Store) Has(flow string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.flows[flow]
	return ok
}

// Set replaces the entries of flow (an empty list keeps the flow known).
func (s *Store) Set(flow string, entries []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.flows[flow]; ok && slices.Equal(old, entries) {
		return
	}
	s.flows[flow] = append([]Entry{}, entries...)
	s.dirty = true
}

// Delete forgets flow.
func (s *Store) Delete(flow string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.flows[flow]; ok {
		delete(s.flows, flow)
		s.dirty = true
	}
}

// Flows returns the names of the flows in the store.
func (s *Store) Flows() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.flows))
}

// Save writes the store to disk if it changed since the last Save.
func (s *Store) Save() error {
	s.mu.Lock()
	if !s.dirty || s.path == "" {
		s.mu.Unlock()
		return nil
	}
	b, err := json.MarshalIndent(document{Version: 1, Flows: s.flows}, "", " ")
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("offsets: %w", err)
	}
	if err := writeAtomic(s.path, b); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return fmt.Errorf("offsets: %w", err)
	}
	return nil
}

// Writable reports why Save could not replace the file, if it could not:
// it writes the store's contents as Save does (temporary file, fsync,
// rename), so a directory that is read-only, or a file the process may not
// replace, is found before anything is sent. A missing file is created
// (holding no flows). It returns nil for the zero Store.
func (s *Store) Writable() error {
	s.mu.Lock()
	if s.path == "" {
		s.mu.Unlock()
		return nil
	}
	b, err := json.MarshalIndent(document{Version: 1, Flows: s.flows}, "", " ")
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("offsets: %w", err)
	}
	if err := writeAtomic(s.path, b); err != nil {
		return fmt.Errorf("offsets: %s cannot be written: %w", s.path, err)
	}
	return nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Chmod(0o600)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return werr
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
