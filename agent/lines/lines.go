// Package lines cuts the bytes of a log file into records: one line each, or
// several lines when a multi-line start pattern is set. It skips header lines,
// holds an incomplete last line until it is completed or flushed, and bounds
// every record to a maximum size by truncating or splitting it.
//
// Each record carries the file offset just past its last byte, so a caller
// that saves the offset of the last delivered record resumes at a record
// boundary.
package lines

import (
	"bytes"
	"regexp"
)

// Config controls how bytes become records.
type Config struct {
	// SkipHeaderLines lines are dropped at the start of the file (only when
	// reading starts at offset 0). Default 0.
	SkipHeaderLines int
	// MultiLineStart, when set, matches the first line of each record (the
	// line without its newline). Lines that do not match are appended to the
	// record before them. Default nil: every line is a record.
	MultiLineStart *regexp.Regexp
	// MaxRecordSize is the largest record in bytes, terminator included.
	// Default 1 MiB; at least len(Terminator)+1.
	MaxRecordSize int
	// Terminator ends a record that was cut at MaxRecordSize. Default "\n".
	Terminator string
	// Split sends the rest of an over-long line as further records instead of
	// dropping it. Default false (truncate).
	Split bool
}

// Record is one record cut from the file.
type Record struct {
	// Data is the record, with its trailing newline when it had one. It is
	// owned by the receiver.
	Data []byte
	// End is the file offset just past the record: where reading resumes
	// once this record and all before it are delivered.
	End int64
}

// Stats counts what the splitter changed or dropped.
type Stats struct {
	HeaderLines  int64 // lines skipped as headers
	Truncated    int64 // records cut at MaxRecordSize, the rest dropped
	Split        int64 // extra records made by splitting over-long lines
	DroppedBytes int64 // bytes dropped by truncation
}

// Splitter cuts a stream of bytes into records. It is not safe for
// concurrent use.
type Splitter struct {
	cfg      Config
	lineMax  int // payload bytes of a cut record, before the terminator
	off      int64
	header   int
	line     []byte
	lineTrun bool // dropping the rest of an over-long line
	group    []byte
	groupEnd int64
	groupHas bool
	groupCut bool // group truncated: drop continuation lines
	stats    Stats
}

// New returns a splitter for bytes starting at file offset start.
func New(cfg Config, start int64) *Splitter {
	if cfg.MaxRecordSize <= 0 {
		cfg.MaxRecordSize = 1 << 20
	}
	if cfg.Terminator == "" {
		cfg.Terminator = "\n"
	}
	if cfg.MaxRecordSize <= len(cfg.Terminator) {
		cfg.MaxRecordSize = len(cfg.Terminator) + 1
	}
	s := &Splitter{cfg: cfg, lineMax: cfg.MaxRecordSize - len(cfg.Terminator), off: start}
	if start == 0 {
		s.header = cfg.SkipHeaderLines
	}
	return s
}

// Offset returns the file offset of the next byte to be written.
func (s *Splitter) Offset() int64 { return s.off }

// Pending reports whether bytes are held that Flush would emit.
func (s *Splitter) Pending() bool { return len(s.line) > 0 || s.groupHas }

// Stats returns the counters so far.
func (s *Splitter) Stats() Stats { return s.stats }

// Write consumes the next bytes of the file, calling emit for each record
// completed.
func (s *Splitter) Write(p []byte, emit func(Record)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk, complete := p, false
		if i >= 0 {
			chunk, complete = p[:i+1], true
		}
		p = p[len(chunk):]
		s.off += int64(len(chunk))
		s.feed(chunk, complete, emit)
	}
}

// Flush emits what is held: an incomplete last line and an open multi-line
// record. Bytes that complete the line later form a record of their own.
func (s *Splitter) Flush(emit func(Record)) {
	if len(s.line) > 0 {
		data := s.line
		if s.lineTrun {
			data = append(data, s.cfg.Terminator...)
		}
		s.finishLine(data, s.off, emit)
		s.line = s.line[:0]
		// With lineTrun still set, the rest of the over-long line is dropped.
	}
	s.emitGroup(emit)
}

func (s *Splitter) feed(chunk []byte, complete bool, emit func(Record)) {
	if s.lineTrun {
		s.stats.DroppedBytes += int64(len(chunk))
		if complete {
			if len(s.line) > 0 {
				s.finishLine(append(s.line, s.cfg.Terminator...), s.off, emit)
			}
			s.line, s.lineTrun = s.line[:0], false
		}
		return
	}
	s.line = append(s.line, chunk...)
	limit := s.cfg.MaxRecordSize
	if !complete {
		limit-- // room for the newline still to come
	}
	if len(s.line) <= limit {
		if complete {
			s.finishLine(s.line, s.off, emit)
			s.line = s.line[:0]
		}
		return
	}
	if s.cfg.Split {
		start := s.off - int64(len(s.line))
		for len(s.line) > limit {
			piece := append(append([]byte(nil), s.line[:s.lineMax]...), s.cfg.Terminator...)
			start += int64(s.lineMax)
			s.stats.Split++
			s.finishLine(piece, start, emit)
			s.line = append(s.line[:0], s.line[s.lineMax:]...)
		}
		if complete && len(s.line) > 0 {
			s.finishLine(s.line, s.off, emit)
			s.line = s.line[:0]
		}
		return
	}
	s.stats.Truncated++
	s.stats.DroppedBytes += int64(len(s.line) - s.lineMax)
	s.line = s.line[:s.lineMax]
	if complete {
		s.finishLine(append(s.line, s.cfg.Terminator...), s.off, emit)
		s.line = s.line[:0]
		return
	}
	s.lineTrun = true
}

// finishLine handles one line (or piece of a line) ending at end. data may
// be reused by the caller after it returns.
func (s *Splitter) finishLine(data []byte, end int64, emit func(Record)) {
	if s.header > 0 {
		s.header--
		s.stats.HeaderLines++
		return
	}
	re := s.cfg.MultiLineStart
	if re == nil {
		emit(Record{Data: bytes.Clone(data), End: end})
		return
	}
	if s.groupHas && re.Match(bytes.TrimRight(data, "\r\n")) {
		s.emitGroup(emit)
	}
	s.groupEnd = end
	switch {
	case s.groupCut:
		s.stats.DroppedBytes += int64(len(data))
	case len(s.group)+len(data) <= s.cfg.MaxRecordSize:
		s.group = append(s.group, data...)
	case s.cfg.Split:
		if s.groupHas {
			s.emitGroupEndingAt(end-int64(len(data)), emit)
			s.groupEnd = end
		}
		s.stats.Split++
		s.group = append(s.group, data...)
	default:
		fill := s.lineMax - len(s.group)
		if fill < 0 {
			fill = 0
		}
		s.group = append(append(s.group, data[:fill]...), s.cfg.Terminator...)
		s.stats.Truncated++
		s.stats.DroppedBytes += int64(len(data) - fill)
		s.groupCut = true
	}
	s.groupHas = true
}

func (s *Splitter) emitGroupEndingAt(end int64, emit func(Record)) {
	s.groupEnd = end
	s.emitGroup(emit)
}

func (s *Splitter) emitGroup(emit func(Record)) {
	if !s.groupHas {
		return
	}
	emit(Record{Data: bytes.Clone(s.group), End: s.groupEnd})
	s.group, s.groupHas, s.groupCut = s.group[:0], false, false
}
