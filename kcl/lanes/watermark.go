package lanes

import (
	"sync"

	"github.com/kinesisgo/kinesis/checkpoint"
)

// watermark tracks the records of a shard between their delivery and
// their completion (handled, or stored by the destination), in delivery
// order, which is the shard's order. Its mark is the position of the last
// record before which every record has completed: the checkpoint that
// loses nothing, whichever lanes are behind. It is safe for concurrent
// use.
type watermark struct {
	mu   sync.Mutex
	room *sync.Cond // signalled when records above the mark drop below the bound
	// next is the ordinal of the next record added; pending[i] is the
	// record of ordinal base+i.
	base, next uint64
	pending    []slot
	mark       checkpoint.SequenceNumber // zero while nothing completed
	moved      chan struct{}             // gets a token when mark moves
}

type slot struct {
	pos  checkpoint.SequenceNumber
	done bool
}

func newWatermark() *watermark {
	w := &watermark{moved: make(chan struct{}, 1)}
	w.room = sync.NewCond(&w.mu)
	return w
}

// add records a delivered record and returns its ordinal.
func (w *watermark) add(pos checkpoint.SequenceNumber) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, slot{pos: pos})
	w.next++
	return w.next - 1
}

// complete records that the records of ordinals ords completed, and moves
// the mark past every completed record at its head.
func (w *watermark) complete(ords ...uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range ords {
		if o >= w.base && o < w.next {
			w.pending[o-w.base].done = true
		}
	}
	n := 0
	for n < len(w.pending) && w.pending[n].done {
		n++
	}
	if n == 0 {
		return
	}
	w.mark = w.pending[n-1].pos
	clear(w.pending[:n]) // drop the sequence strings for the collector
	w.pending = w.pending[n:]
	w.base += uint64(n)
	w.room.Broadcast()
	select {
	case w.moved <- struct{}{}:
	default:
	}
}

// held returns the number of records above the mark.
func (w *watermark) held() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// current returns the mark; ok is false while no record completed.
func (w *watermark) current() (pos checkpoint.SequenceNumber, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mark, w.mark.Sequence != ""
}

// waitRoom blocks while limit or more records are above the mark, until
// stop returns true (checked whenever the mark moves, and when wake is
// called).
func (w *watermark) waitRoom(limit int, stop func() bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.pending) >= limit && !stop() {
		w.room.Wait()
	}
}

// end returns the ordinal the next record added gets.
func (w *watermark) end() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// waitThrough blocks until every record of an ordinal below end
// completed, or stop returns true (checked as in waitRoom).
func (w *watermark) waitThrough(end uint64, stop func() bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.base < end && !stop() {
		w.room.Wait()
	}
}

// wake makes waitRoom and waitThrough check their stop condition.
func (w *watermark) wake() {
	w.mu.Lock()
	w.room.Broadcast()
	w.mu.Unlock()
}
