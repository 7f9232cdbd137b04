package kpl

import (
	"sync"
	"sync/atomic"
)

const arenaChunk = 64 << 10

// chunk is a block of memory holding copies of small records' data. Chunks
// are reused once every record copied into one has completed: refs starts
// at chunkHold while the chunk is a shard's current one; completed records
// subtract themselves, and when the shard moves on it trades the hold for
// the number of records it copied in. The chunk goes back to the pool when
// refs reaches zero, which happens once.
type chunk struct {
	buf   []byte
	refs  atomic.Int64
	added int64             // records copied in; guarded by the owning shard's mu
	free  *freeList[*chunk] // where it goes back to; nil: to the garbage collector
}

const chunkHold = 1 << 40

// release gives back n records' references.
func (c *chunk) release(n int64) {
	if c.refs.Add(-n) == 0 && c.free != nil {
		c.buf = c.buf[:0]
		c.free.put(c)
	}
}

// freeList keeps up to max items for reuse. Unlike a sync.Pool it keeps
// them across garbage collections: memory the buffer used once is reused
// rather than dropped and allocated again, which would let the heap grow
// to twice the buffer between collections.
type freeList[T any] struct {
	mu    sync.Mutex
	items []T
	max   int
}

// get returns an item kept for reuse, or false.
func (l *freeList[T]) get() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var zero T
	n := len(l.items)
	if n == 0 {
		return zero, false
	}
	it := l.items[n-1]
	l.items[n-1] = zero
	l.items = l.items[:n-1]
	return it, true
}

// put keeps it for reuse, if there is room.
func (l *freeList[T]) put(it T) {
	l.mu.Lock()
	if len(l.items) < l.max {
		l.items = append(l.items, it)
	}
	l.mu.Unlock()
}

// dropChunkLocked lets go of s's current chunk. s.mu is held.
func (s *shard) dropChunkLocked() {
	if c := s.chunk; c != nil {
		s.chunk = nil
		c.release(chunkHold - c.added)
	}
}

// copyData copies record data into the shard's current chunk (larger data
// gets its own copy) and returns the copy and its chunk. s.mu is held.
func (s *shard) copyData(d []byte) ([]byte, *chunk) {
	n := len(d)
	if n > arenaChunk/16 {
		return cloneData(d), nil
	}
	c := s.chunk
	if c == nil || cap(c.buf)-len(c.buf) < n {
		s.dropChunkLocked()
		var ok bool
		if s.chunks != nil {
			c, ok = s.chunks.get()
		}
		if !ok {
			c = &chunk{buf: make([]byte, 0, arenaChunk), free: s.chunks}
		}
		c.buf, c.added = c.buf[:0], 0
		c.refs.Store(chunkHold)
		s.chunk = c
	}
	off := len(c.buf)
	c.buf = append(c.buf, d...)
	c.added++
	return c.buf[off : off+n : off+n], c
}

func cloneData(d []byte) []byte {
	return append(make([]byte, 0, len(d)), d...)
}
