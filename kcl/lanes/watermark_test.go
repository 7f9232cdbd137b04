package lanes

import (
	"strconv"
	"testing"

	"github.com/kinesisgo/kinesis/checkpoint"
)

func pos(i int) checkpoint.SequenceNumber {
	return checkpoint.SequenceNumber{Sequence: "4968000000000000000000000000000000000000000000000" + strconv.Itoa(1000000+i)}
}

// The mark moves only past records whose every predecessor completed,
// whatever order they complete in.
func TestWatermarkOutOfOrder(t *testing.T) {
	w := newWatermark()
	var ords []uint64
	for i := range 6 {
		ords = append(ords, w.add(pos(i)))
	}
	if _, ok := w.current(); ok {
		t.Fatal("a mark before any record completed")
	}
	w.complete(ords[1], ords[2], ords[4])
	if _, ok := w.current(); ok {
		t.Fatal("the mark moved though the first record is not complete")
	}
	if w.held() != 6 {
		t.Fatalf("held %d, want 6", w.held())
	}
	w.complete(ords[0])
	if m, _ := w.current(); m != pos(2) {
		t.Fatalf("mark %s, want %s (record 3 is not complete)", m, pos(2))
	}
	if w.held() != 3 {
		t.Fatalf("held %d, want 3", w.held())
	}
	select {
	case <-w.moved:
	default:
		t.Fatal("no notice of the move")
	}
	w.complete(ords[3], ords[3]) // twice: no harm
	if m, _ := w.current(); m != pos(4) {
		t.Fatalf("mark %s, want %s", m, pos(4))
	}
	w.add(pos(6))
	w.complete(ords[5])
	if m, _ := w.current(); m != pos(5) || w.held() != 1 {
		t.Fatalf("mark %s held %d, want %s and 1", m, w.held(), pos(5))
	}
}

// waitRoom blocks while the bound is reached, until records complete.
func TestWatermarkWaitRoom(t *testing.T) {
	w := newWatermark()
	a, b := w.add(pos(0)), w.add(pos(1))
	done := make(chan struct{})
	go func() {
		w.waitRoom(2, func() bool { return false })
		close(done)
	}()
	w.complete(b) // not at the head: still 2 above the mark
	select {
	case <-done:
		t.Fatal("waitRoom returned with 2 records above the mark")
	default:
	}
	w.complete(a)
	<-done
	stopped := make(chan struct{})
	w.add(pos(2))
	w.add(pos(3))
	stop := false
	go func() {
		w.waitRoom(2, func() bool { return stop })
		close(stopped)
	}()
	w.mu.Lock()
	stop = true
	w.mu.Unlock()
	w.wake()
	<-stopped
}
