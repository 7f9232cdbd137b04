package kpl

import "sync"

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

func cloneData(d []byte) []byte {
	return append(make([]byte, 0, len(d)), d...)
}
