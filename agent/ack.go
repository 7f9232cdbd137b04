package agent

import (
	"cmp"
	"slices"

	"github.com/kinesisgo/kinesis/agent/offsets"
)

// tracker follows the records of one file generation in the order they were
// read and keeps acked: the end offset of the longest prefix of them that
// Kinesis has acknowledged. Acknowledgements may come in any order. The
// caller serialises access.
type tracker struct {
	acked int64
	head  uint64 // sequence number of queue[0]
	queue []pendingEnd
}

type pendingEnd struct {
	end  int64
	done bool
}

// add registers a record ending at end and returns its sequence number.
func (t *tracker) add(end int64) uint64 {
	t.queue = append(t.queue, pendingEnd{end: end})
	return t.head + uint64(len(t.queue)) - 1
}

// ack marks record seq acknowledged and advances acked over the
// acknowledged prefix.
func (t *tracker) ack(seq uint64) {
	if seq < t.head || seq-t.head >= uint64(len(t.queue)) {
		return
	}
	t.queue[seq-t.head].done = true
	n := 0
	for n < len(t.queue) && t.queue[n].done {
		t.acked = max(t.acked, t.queue[n].end)
		n++
	}
	if n > 0 {
		t.queue = t.queue[n:]
		t.head += uint64(n)
		if len(t.queue) == 0 {
			t.queue = nil // let the backing array go
		}
	}
}

func sortEntries(es []offsets.Entry) {
	slices.SortFunc(es, func(a, b offsets.Entry) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Inode, b.Inode))
	})
}
