package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/kinesisgo/kinesis/kpl"
	"github.com/spf13/cobra"
)

// putSummary is the JSON form of put's summary.
type putSummary struct {
	Stream string `json:"stream"`
	// Records is the number of lines read; Written and Failed add up to it.
	Records int64 `json:"records"`
	Written int64 `json:"written"`
	Failed  int64 `json:"failed"`
	// Bytes is the data written, without newlines.
	Bytes int64 `json:"bytes"`
	// KinesisRecords is the number of Kinesis records the written user
	// records went into (fewer when aggregated).
	KinesisRecords int              `json:"kinesisRecords"`
	Shards         map[string]int64 `json:"shards"`
	Seconds        float64          `json:"seconds"`
	// Errors are the first few failures, one per record.
	Errors []string `json:"errors,omitempty"`
}

const maxReportedErrors = 10

func (a *app) putCommand() *cobra.Command {
	var (
		partitionKey string
		noAggregate  bool
		preserve     bool
	)
	cmd := &cobra.Command{
		Use:   "put STREAM [FILE...]",
		Short: "Write one record per line of the files (or standard input) through the producer",
		Long: `Write one record per line of the files, or of standard input when none is
given (or for "-"). The newline is not part of the record; an empty line is an
empty record. Records go through the kpl producer with its defaults:
aggregated per shard in the KPL format, batched, rate-limited and retried.

Each record gets a random partition key unless --partition-key is given. On a
terminal a progress line is shown on standard error; a summary follows on
standard output (JSON with --json). Exit code 7 when some records could not be
written (the first few errors are listed).`,
		Args: func(_ *cobra.Command, argv []string) error {
			if len(argv) < 1 {
				return usageErr("want STREAM [FILE...]")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&partitionKey, "partition-key", "", "partition key of every record (default: a random key per record)")
	cmd.Flags().BoolVar(&noAggregate, "no-aggregation", false, "send each line as its own Kinesis record (for consumers that cannot read KPL aggregates)")
	cmd.Flags().BoolVar(&preserve, "preserve-order", false, "keep the order of records with the same partition key, retries included (slower)")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		stream, files := argv[0], argv[1:]
		if len(files) == 0 {
			files = []string{"-"}
		}
		if err := checkPartitionKey(partitionKey, cmd.Flags().Changed("partition-key")); err != nil {
			return err
		}
		var total int64 // bytes to read, when every input is a regular file
		for _, f := range files {
			if f == "-" {
				total = -1
				continue
			}
			fi, err := os.Stat(f)
			if err != nil {
				return usageErr("cannot read %s: %v", f, errors.Unwrap(err))
			}
			if fi.IsDir() {
				return usageErr("cannot read %s: it is a directory; put reads lines from files or standard input", f)
			}
			if !fi.Mode().IsRegular() {
				total = -1 // a FIFO or a device: its size says nothing
			}
			if total >= 0 {
				total += fi.Size()
			}
		}
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		if _, err := describeStream(ctx, client, stream); err != nil {
			return err
		}
		producerClient := kinesis.NewFromConfig(*a.cfg, func(o *kinesis.Options) {
			if a.endpoint != "" {
				o.BaseEndpoint = aws.String(a.endpoint)
			}
			o.Retryer = aws.NopRetryer{} // the producer retries itself
		})
		p, err := kpl.New(kpl.Config{Stream: stream, Kinesis: producerClient, DisableAggregation: noAggregate, PreserveOrder: preserve})
		if err != nil {
			return err
		}
		w := &putWriter{producer: p, stream: stream, fixedKey: partitionKey, shards: map[string]int64{}, containers: map[string]bool{}}
		var progress *progressLine
		if isTerminal(a.stderr) {
			progress = startProgress(a.stderr, w, total)
		}
		start := time.Now()
		// Reading runs on its own so that an interrupt ends put at once
		// even while it waits for input: opening a FIFO that no writer
		// has opened, or reading a pipe that is slow to write. The reader
		// is then left behind, blocked, until the process exits.
		readDone := make(chan error, 1)
		go func() { readDone <- w.readAll(ctx, a.stdin, files) }()
		var readErr error
		select {
		case readErr = <-readDone:
		case <-ctx.Done():
		}
		// Close flushes what is buffered, also after an interrupt: the
		// records read are written. Records not written by the time they
		// expire (RecordTTL) fail with an error each; a second signal
		// ends the program at once (see main).
		closeErr := p.Close(context.WithoutCancel(ctx))
		if progress != nil {
			progress.stop()
		}
		sum := w.summary(time.Since(start))
		if err := a.emit(sum, func(out io.Writer) error { return printPutSummary(out, sum) }); err != nil {
			return err
		}
		switch {
		case readErr != nil:
			return readErr
		case ctx.Err() != nil:
			return fail(exitInterrupted, ctx.Err(), "interrupted: %d of %d records written", sum.Written, sum.Records)
		case sum.Failed > 0:
			return fail(exitIncomplete, closeErr, "%d of %d records were not written; first error: %s", sum.Failed, sum.Records, sum.Errors[0])
		case closeErr != nil:
			return closeErr
		}
		return nil
	})
	return cmd
}

// checkPartitionKey checks the --partition-key value, given when set is
// true, against what Kinesis accepts: 1 to 256 characters of valid UTF-8.
func checkPartitionKey(key string, set bool) error {
	switch {
	case !set:
		return nil
	case key == "":
		return usageErr("--partition-key is empty: a partition key has 1 to %d characters; leave the flag out for a random key per record", kpl.MaxPartitionKeyChars)
	case !utf8.ValidString(key):
		return usageErr("--partition-key %q is not valid UTF-8", key)
	}
	if n := utf8.RuneCountInString(key); n > kpl.MaxPartitionKeyChars {
		return usageErr("--partition-key has %d characters; at most %d", n, kpl.MaxPartitionKeyChars)
	}
	return nil
}

// putWriter reads lines and puts them, counting the outcomes.
type putWriter struct {
	producer *kpl.Producer
	stream   string
	fixedKey string

	read, bytesRead atomic.Int64 // lines and bytes (newlines included) read
	written, failed atomic.Int64
	writtenBytes    atomic.Int64
	mu              sync.Mutex // guards the fields below
	shards          map[string]int64
	containers      map[string]bool // shard/sequence numbers written
	errors          []string
}

func (w *putWriter) readAll(ctx context.Context, stdin io.Reader, files []string) error {
	for _, name := range files {
		var r io.Reader = stdin
		label := "standard input"
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return usageErr("cannot read %s: %v", name, err)
			}
			defer f.Close()
			r, label = f, name
		}
		if err := w.readLines(ctx, r, label); err != nil {
			return err
		}
	}
	return nil
}

func (w *putWriter) readLines(ctx context.Context, r io.Reader, label string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		data, err := br.ReadBytes('\n')
		if len(data) == 0 && err == io.EOF {
			return nil
		}
		if err != nil && err != io.EOF {
			return fail(exitFailure, err, "reading %s: %v", label, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		w.bytesRead.Add(int64(len(data)))
		if n := len(data); n > 0 && data[n-1] == '\n' {
			data = data[:n-1]
		}
		w.put(ctx, data, fmt.Sprintf("%s:%d", label, line))
		if err == io.EOF {
			return nil
		}
	}
}

// put hands one record to the producer; its outcome is counted when known.
func (w *putWriter) put(ctx context.Context, data []byte, where string) {
	w.read.Add(1)
	key := w.fixedKey
	if key == "" {
		key = randomKey()
	}
	size := int64(len(data))
	err := w.producer.Put(ctx, kpl.Record{PartitionKey: key, Data: data}, func(r kpl.Result) {
		if r.Err != nil {
			w.recordFailure(where, r.Err)
			return
		}
		w.written.Add(1)
		w.writtenBytes.Add(size)
		w.mu.Lock()
		w.shards[r.ShardID]++
		w.containers[r.ShardID+"/"+r.SequenceNumber] = true
		w.mu.Unlock()
	})
	if err != nil {
		w.recordFailure(where, err)
	}
}

func (w *putWriter) recordFailure(where string, err error) {
	w.failed.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errors) < maxReportedErrors {
		w.errors = append(w.errors, where+": "+redact(err.Error()))
	}
}

func randomKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (w *putWriter) summary(elapsed time.Duration) putSummary {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := putSummary{
		Stream: w.stream, Records: w.read.Load(), Written: w.written.Load(), Failed: w.failed.Load(),
		Bytes: w.writtenBytes.Load(), KinesisRecords: len(w.containers), Shards: map[string]int64{},
		Seconds: elapsed.Seconds(), Errors: append([]string(nil), w.errors...),
	}
	for k, v := range w.shards {
		s.Shards[k] = v
	}
	// Records whose outcome never came (an interrupted Close) count as failed.
	if lost := s.Records - s.Written - s.Failed; lost > 0 {
		s.Failed += lost
	}
	return s
}

func printPutSummary(w io.Writer, s putSummary) error {
	rate := 0.0
	if s.Seconds > 0 {
		rate = float64(s.Written) / s.Seconds
	}
	fmt.Fprintf(w, "put %d records to %s in %.1fs (%.0f records/s): %d written, %d failed, %d bytes in %d Kinesis records\n",
		s.Records, s.Stream, s.Seconds, rate, s.Written, s.Failed, s.Bytes, s.KinesisRecords)
	shards := make([]string, 0, len(s.Shards))
	for id := range s.Shards {
		shards = append(shards, id)
	}
	sort.Strings(shards)
	t := newTable(w, "SHARD", "RECORDS")
	for _, id := range shards {
		t.row(id, fmt.Sprint(s.Shards[id]))
	}
	if len(shards) > 0 {
		if err := t.flush(); err != nil {
			return err
		}
	}
	for _, e := range s.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine redraws one status line on a terminal until stopped.
type progressLine struct {
	stopc chan struct{}
	done  chan struct{}
}

func startProgress(out io.Writer, w *putWriter, total int64) *progressLine {
	p := &progressLine{stopc: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	draw := func() {
		written, failed, read := w.written.Load(), w.failed.Load(), w.read.Load()
		rate := float64(written) / max(time.Since(start).Seconds(), 0.001)
		line := fmt.Sprintf("%d read, %d written, %d failed, %.0f/s", read, written, failed, rate)
		if total > 0 {
			const width = 30
			frac := min(1, float64(w.bytesRead.Load())/float64(total))
			n := int(frac * width)
			line = fmt.Sprintf("[%s%s] %3.0f%% %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, line)
		}
		fmt.Fprintf(out, "\r\x1b[K%s", line)
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stopc:
				draw()
				fmt.Fprintln(out)
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return p
}

func (p *progressLine) stop() {
	close(p.stopc)
	<-p.done
}
