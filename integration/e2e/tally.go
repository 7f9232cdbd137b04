package e2e

import (
	"bytes"
	"io"
	"os"
)

// tally counts the lines the consumers wrote: which generated lines were
// seen, and how often.
type tally struct {
	seen       []uint16 // per line number, times consumed (saturating)
	distinct   int
	total      int
	duplicates int
	foreign    int // lines that carry no generated number
	files      map[string]*fileScan
}

type fileScan struct {
	offset  int64
	partial []byte // bytes after the last newline
}

func newTally(lines int) *tally {
	return &tally{seen: make([]uint16, lines), files: map[string]*fileScan{}}
}

// scan reads what was appended to path since the last scan. Only complete
// lines count: a worker killed mid-write leaves a partial last line, whose
// record was not checkpointed and is consumed again elsewhere.
func (t *tally) scan(path string) error {
	fs := t.files[path]
	if fs == nil {
		fs = &fileScan{}
		t.files[path] = fs
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(fs.offset, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	fs.offset += int64(len(data))
	data = append(fs.partial, data...)
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		fs.partial = data
		return nil
	}
	fs.partial = append([]byte(nil), data[last+1:]...)
	for _, line := range bytes.Split(data[:last], []byte{'\n'}) {
		t.add(line)
	}
	return nil
}

func (t *tally) add(line []byte) {
	t.total++
	id := parseID(line)
	if id < 0 || id >= len(t.seen) {
		t.foreign++
		return
	}
	switch t.seen[id] {
	case 0:
		t.distinct++
	default:
		t.duplicates++
	}
	if t.seen[id] < ^uint16(0) {
		t.seen[id]++
	}
}

// missing returns up to max line numbers below sent that were never seen.
func (t *tally) missing(sent, max int) (ids []int, count int) {
	for id := 0; id < sent && id < len(t.seen); id++ {
		if t.seen[id] == 0 {
			count++
			if len(ids) < max {
				ids = append(ids, id)
			}
		}
	}
	return ids, count
}
