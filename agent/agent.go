// Package agent tails log files into Kinesis data streams and Amazon Data
// Firehose delivery streams: the engine of the kinesis-agent daemon.
//
// Each flow follows the files matching a pattern (package tail), cuts them
// into records (package lines), applies the data processing options (package
// process) and hands the records to a Sink: a kpl.Producer (KPLSink) for a
// Kinesis stream, a FirehoseSink for a delivery stream. The partition key of
// a Kinesis record is random, derived from its data, or taken from the
// record (a field of the processed record, or a capture group of the raw
// line). The offset saved per file (package offsets) is that of the last
// record acknowledged by the service with every record before it
// acknowledged too, so a restart after a crash resumes with nothing lost;
// only records in flight at the crash may be sent twice. While the sink is
// blocked or too many records await acknowledgement, reading pauses: memory
// stays bounded. A stream that does not exist or may not be written
// (ResourceNotFoundException, AccessDeniedException) pauses its flow for
// Config.UnavailableBackoff, logged and counted, rather than being tried
// again at the pace of passing failures.
package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/agent/process"
)

// ErrRecordRejected is wrapped by a Sink's Put error for a record that can
// never be sent (too large, bad partition key). The agent counts and drops
// it instead of trying again.
var ErrRecordRejected = errors.New("agent: record rejected by the sink")

// ErrAlreadyRun is returned by Agent.Run when Run was called on the agent
// before (or is running on it now): an agent runs once. Make a new one with
// New to run the flows again; it resumes from the saved offsets.
var ErrAlreadyRun = errors.New("agent: Run already called")

// DefaultMaxPendingBytes is the default of Config.MaxPendingBytes; half of
// it is the buffer ProducerConfig gives the producer of a Kinesis flow.
const DefaultMaxPendingBytes = 32 << 20

// Record is one record for a stream.
type Record struct {
	PartitionKey string
	Data         []byte
}

// Sink sends records to one stream. It is the part of a producer the agent
// uses; KPLSink adapts a kpl.Producer.
type Sink interface {
	// Put hands r over for sending. It may block while the sink is full,
	// which pauses the reading of files. It returns an error only when r was
	// not taken (for example ctx ended); done is then never called.
	// Otherwise done is called exactly once, from any goroutine, with nil
	// once Kinesis acknowledged r, or with the error that made the sink give
	// up on it (the agent then puts r again later).
	Put(ctx context.Context, r Record, done func(error)) error
	// Flush starts sending what is buffered without waiting for it to fill.
	Flush(ctx context.Context) error
	// Close stops the sink. Records not acknowledged by then fail.
	Close(ctx context.Context) error
}

// Config configures an Agent.
type Config struct {
	// Flows are the flows to run. At least one.
	Flows []config.Flow
	// Offsets stores acknowledged positions. Required; New checks that its
	// file can be written.
	Offsets *offsets.Store
	// NewSink returns the sink a flow sends to. Required. The agent closes
	// the sinks it made when Run ends.
	NewSink func(config.Flow) (Sink, error)
	// ShutdownTimeout bounds the whole shutdown once Run's context ends:
	// the wait for records in flight and the closing of the sinks (records
	// still unacknowledged at its end fail and are read again at the next
	// start). Default 10s.
	ShutdownTimeout time.Duration
	// ProgressInterval is how often each flow logs its progress. Default 30s.
	ProgressInterval time.Duration
	// SaveInterval is how often acknowledged offsets are written. Default 1s.
	SaveInterval time.Duration
	// MaxPendingRecords bounds the records of one flow read but not yet
	// acknowledged; reading pauses at the bound. Default 20,000.
	MaxPendingRecords int
	// MaxPendingBytes bounds the bytes of those records. Default
	// DefaultMaxPendingBytes (32 MiB).
	MaxPendingBytes int
	// RetryBackoff is the longest wait before a record the sink gave up on
	// is put again after its first failure. The wait is random between zero
	// and a ceiling (full jitter, so that records failed together are not
	// put again together); the ceiling starts at RetryBackoff and doubles
	// with each failure of that record, up to 30s. Default 500ms.
	RetryBackoff time.Duration
	// UnavailableBackoff is how long a flow puts and reads nothing after
	// its stream answered ResourceNotFoundException or
	// AccessDeniedException (the stream does not exist, or the credentials
	// may not write it): such an error is logged at error level with the
	// flow, counted in kinesis_agent_stream_unavailable_total, and the
	// records are put again once the pause is over. Default 1m.
	UnavailableBackoff time.Duration
	// CloseInactive is how long a file renamed away or deleted stays open
	// after its last new byte. Default 5s.
	CloseInactive time.Duration
	// Logger receives progress lines and warnings. Default no-op. Record
	// payloads are never logged.
	Logger *zap.Logger
	// Metrics registers the kinesis_agent_ metrics. Default none.
	Metrics prometheus.Registerer
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	switch {
	case len(c.Flows) == 0:
		return errors.New("agent: no flows")
	case c.Offsets == nil:
		return errors.New("agent: Offsets is required")
	case c.NewSink == nil:
		return errors.New("agent: NewSink is required")
	case c.ShutdownTimeout < 0, c.ProgressInterval < 0, c.SaveInterval < 0, c.RetryBackoff < 0, c.CloseInactive < 0, c.UnavailableBackoff < 0:
		return errors.New("agent: durations must not be negative")
	case c.MaxPendingRecords < 0, c.MaxPendingBytes < 0:
		return errors.New("agent: MaxPendingRecords and MaxPendingBytes must not be negative")
	}
	for i := range c.Flows {
		if _, err := process.New(c.Flows[i].Processing); err != nil {
			return fmt.Errorf("agent: flow %s: %w", c.Flows[i].ID(), err)
		}
	}
	return nil
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.ShutdownTimeout == 0 {
		d.ShutdownTimeout = 10 * time.Second
	}
	if d.ProgressInterval == 0 {
		d.ProgressInterval = 30 * time.Second
	}
	if d.SaveInterval == 0 {
		d.SaveInterval = time.Second
	}
	if d.MaxPendingRecords == 0 {
		d.MaxPendingRecords = 20_000
	}
	if d.MaxPendingBytes == 0 {
		d.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if d.RetryBackoff == 0 {
		d.RetryBackoff = 500 * time.Millisecond
	}
	if d.UnavailableBackoff == 0 {
		d.UnavailableBackoff = time.Minute
	}
	if d.CloseInactive == 0 {
		d.CloseInactive = 5 * time.Second
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	return d
}

// Agent runs flows.
type Agent struct {
	cfg     Config
	metrics *metrics
	flows   []*flow
	ran     atomic.Bool // Run was called
}

// New checks cfg and returns an agent ready to Run. It fails when the
// offsets store cannot be written (offsets.Store.Writable).
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Offsets.Writable(); err != nil {
		// Offsets that cannot be saved would make every restart send the
		// files again from where the last saved offsets, if any, left them.
		return nil, fmt.Errorf("agent: acknowledged offsets could not be saved, so every restart would send the files again: %w", err)
	}
	c := cfg.withDefaults()
	a := &Agent{cfg: c, metrics: newMetrics(c.Metrics)}
	for _, fc := range c.Flows {
		f, err := newFlow(fc, &a.cfg, a.metrics)
		if err != nil {
			return nil, err
		}
		a.flows = append(a.flows, f)
	}
	return a, nil
}

// Run tails and sends until ctx ends, then stops reading, waits for records
// in flight, closes the sinks and saves offsets, all within ShutdownTimeout
// of ctx's end (a sink that honours its Close context keeps to it). It
// returns when everything it started has ended.
//
// Run may be called once: a second call, whether during the first or after
// it, returns ErrAlreadyRun at once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	sinks := make([]Sink, len(a.flows))
	var errs []error
	for i, f := range a.flows {
		s, err := a.cfg.NewSink(f.cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("agent: flow %s: sink: %w", f.id, err))
			break
		}
		sinks[i] = s
	}
	if len(errs) > 0 {
		a.closeSinks(sinks)
		return errors.Join(errs...)
	}

	runCtx, stopFlows := context.WithCancel(ctx)
	defer stopFlows()
	var wg sync.WaitGroup
	for i, f := range a.flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.run(runCtx, sinks[i])
		}()
	}

	saveDone := make(chan struct{})
	saverCtx, stopSaver := context.WithCancel(context.Background())
	go func() {
		defer close(saveDone)
		t := time.NewTicker(a.cfg.SaveInterval)
		defer t.Stop()
		for {
			select {
			case <-saverCtx.Done():
				return
			case <-t.C:
				a.save()
			}
		}
	}()

	<-ctx.Done()
	// One deadline for the whole shutdown: the flows' wait for records in
	// flight and the closing of the sinks share ShutdownTimeout.
	stopCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	wg.Wait() // flows stop reading
	for i, f := range a.flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.drain(stopCtx, sinks[i])
			f.logProgress()
		}()
	}
	wg.Wait()
	for _, s := range sinks {
		if cerr := s.Close(stopCtx); cerr != nil {
			a.cfg.Logger.Warn("closing sink", zap.Error(cerr))
		}
	}
	// Saved after the sinks are closed, so that records they acknowledged
	// while closing count too.
	stopSaver()
	<-saveDone
	return a.save()
}

func (a *Agent) closeSinks(sinks []Sink) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range sinks {
		if s != nil {
			_ = s.Close(ctx)
		}
	}
}

// save writes the acknowledged offsets of every flow.
func (a *Agent) save() error {
	for _, f := range a.flows {
		if entries, ok := f.entries(); ok {
			a.cfg.Offsets.Set(f.id, entries)
		}
	}
	if err := a.cfg.Offsets.Save(); err != nil {
		a.cfg.Logger.Error("saving offsets", zap.String("file", a.cfg.Offsets.Path()), zap.Error(err))
		return err
	}
	return nil
}
