package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
)

// lineID finds the unique number of a generated line.
var lineID = regexp.MustCompile(`req=(\d{8})`)

// parseID returns the number of a generated line, or -1.
func parseID(line []byte) int {
	m := lineID.FindSubmatch(line)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		return -1
	}
	return n
}

var (
	paths  = []string{"/", "/cart", "/checkout", "/products/%d", "/search?q=shoes", "/api/v1/orders/%d", "/static/app.js"}
	agents = []string{"Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"}
	codes  = []int{200, 200, 200, 200, 304, 404, 500}
)

// accessLine returns a web access log line in the combined log format whose
// request carries the unique number id.
func accessLine(r *rand.Rand, id int, now time.Time) string {
	path := paths[r.IntN(len(paths))]
	if path[len(path)-1] == 'd' {
		path = fmt.Sprintf(path, r.IntN(1000))
	}
	sep := "?"
	if len(path) > 7 && path[:7] == "/search" {
		sep = "&"
	}
	return fmt.Sprintf("10.0.%d.%d - - [%s] \"GET %s%sreq=%08d HTTP/1.1\" %d %d \"-\" \"%s\"\n",
		r.IntN(256), r.IntN(256), now.Format("02/Jan/2006:15:04:05 -0700"), path, sep, id,
		codes[r.IntN(len(codes))], 200+r.IntN(5000), agents[r.IntN(len(agents))])
}

// logWriter writes the access log at a steady rate and rotates it by
// renaming (access.log -> access.log.1 -> access.log.2 ...) when asked.
type logWriter struct {
	dir     string
	total   int
	rate    int
	written atomic.Int64
	rotated atomic.Int64
	rotate  chan struct{} // a receive means: rotate now
}

func (l *logWriter) path() string { return filepath.Join(l.dir, "access.log") }

// run writes total lines at rate lines per second, then returns. Rotation
// requests are served between two ticks.
func (l *logWriter) run(ctx context.Context) error {
	r := rand.New(rand.NewPCG(1, 2))
	f, w, err := l.open()
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	id := 0
	for id < l.total {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.rotate:
			if err := w.Flush(); err != nil {
				return err
			}
			f.Close()
			if err := l.shift(); err != nil {
				return err
			}
			if f, w, err = l.open(); err != nil {
				return err
			}
			l.rotated.Add(1)
		case now := <-t.C:
			due := min(l.total, int(float64(l.rate)*now.Sub(start).Seconds()))
			for ; id < due; id++ {
				w.WriteString(accessLine(r, id, now))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			l.written.Store(int64(id))
		}
	}
	return nil
}

func (l *logWriter) open() (*os.File, *bufio.Writer, error) {
	f, err := os.OpenFile(l.path(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, bufio.NewWriterSize(f, 64<<10), nil
}

// shift renames access.log.N to access.log.N+1, ..., access.log to
// access.log.1, as logrotate does.
func (l *logWriter) shift() error {
	n := 1
	for {
		if _, err := os.Stat(fmt.Sprintf("%s.%d", l.path(), n)); os.IsNotExist(err) {
			break
		}
		n++
	}
	for ; n > 1; n-- {
		if err := os.Rename(fmt.Sprintf("%s.%d", l.path(), n-1), fmt.Sprintf("%s.%d", l.path(), n)); err != nil {
			return err
		}
	}
	return os.Rename(l.path(), l.path()+".1")
}
