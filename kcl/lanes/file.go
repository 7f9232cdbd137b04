package lanes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// FileDestination appends failed records to a local file of JSON lines,
// one Envelope per line. Each Send writes all its lines with one write and
// syncs the file before it returns, so a Send that returned nil survives a
// crash of the process or of the machine.
//
// A process killed during a write can leave the file ending in part of a
// line: OpenFile truncates such a trailing partial line (whose Send never
// returned nil, so its records are sent again after the restart). Every
// line of the file is therefore whole.
type FileDestination struct {
	mu   sync.Mutex
	f    *os.File
	path string
	buf  []byte
}

// OpenFile opens (creating it when missing, with mode 0o600) the JSON-lines
// file at path for appending, after truncating a partial last line.
func OpenFile(path string) (*FileDestination, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lanes: open destination file: %w", err)
	}
	if err := truncatePartialLine(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lanes: destination file %s: %w", path, err)
	}
	return &FileDestination{f: f, path: path}, nil
}

// truncatePartialLine cuts f after its last newline.
func truncatePartialLine(f *os.File) error {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	end := size
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return err
	}
	return f.Sync()
}

// Send appends one line per record of fl and syncs the file.
func (d *FileDestination) Send(ctx context.Context, fl *Failure) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return fmt.Errorf("lanes: destination file %s: %w", d.path, os.ErrClosed)
	}
	buf := d.buf[:0]
	envs := fl.Envelopes()
	for i := range envs {
		var err error
		if buf, err = appendLine(buf, &envs[i]); err != nil {
			return fmt.Errorf("lanes: encode failed record: %w", err)
		}
	}
	d.buf = buf
	// One write: a kill leaves at most a partial last line, which the
	// next OpenFile removes. A short write without an error cannot happen
	// for a regular file (io.Writer), but a failed one may have written a
	// part: cut it off so that the next Send starts a whole line.
	start, err := d.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("lanes: destination file %s: %w", d.path, err)
	}
	if _, err := d.f.Write(buf); err != nil {
		return errors.Join(fmt.Errorf("lanes: write destination file %s: %w", d.path, err), d.rewind(start))
	}
	if err := d.f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("lanes: sync destination file %s: %w", d.path, err), d.rewind(start))
	}
	return nil
}

// rewind truncates the file back to size after a failed write.
func (d *FileDestination) rewind(size int64) error {
	return d.f.Truncate(size)
}

// Close closes the file. Send fails afterwards.
func (d *FileDestination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
