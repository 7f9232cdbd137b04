package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Firehose limits (Amazon Data Firehose API reference, PutRecordBatch): at
// most 500 records and 4 MiB per call, each record at most 1,000 KiB before
// base64 encoding; these cannot be raised. A delivery stream's name is 1 to
// 64 characters of [a-zA-Z0-9_.-].
const (
	firehoseTargetPrefix   = "Firehose_20150804."
	firehoseMaxBatch       = 500
	firehoseMaxBatchBytes  = 4 << 20
	firehoseMaxRecordBytes = 1000 << 10
)

var deliveryStreamName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// Firehose error codes (the API reference's PutRecordBatch errors and
// per-record ErrorCode values).
const (
	codeFirehoseUnavailable = "ServiceUnavailableException"
	codeFirehoseInvalidArg  = "InvalidArgumentException"
)

// FirehoseConfig makes the proxy emulate the Amazon Data Firehose calls a
// log shipper makes, PutRecordBatch and PutRecord, which neither emulator
// offers. Delivery streams are created on first use. The records of each
// accepted call are written, concatenated as Firehose delivers them to S3
// (no separator added), to a new file in Dir/<delivery stream>/, named by
// an increasing counter, so that a test can read what arrived.
type FirehoseConfig struct {
	// Dir is the folder that receives a folder per delivery stream.
	// Required.
	Dir string
	// RecordsPerSecond and BytesPerSecond are a delivery stream's
	// throughput limits, as token buckets holding one second of credit. A
	// call over them is answered ServiceUnavailableException ("Slow down."),
	// as Firehose answers a stream over its quota. Default 0: unlimited
	// (AWS's quotas depend on the region, e.g. 500,000 records/s and 5 MiB/s
	// in us-east-1).
	RecordsPerSecond int
	BytesPerSecond   int
	// Faults are the faults injected. Default none.
	Faults FirehoseFaults
}

// FirehoseFaults are the faults injected into Firehose calls. Each
// probability is in [0, 1]; zero means never.
type FirehoseFaults struct {
	// Throttle is the probability that a call is answered HTTP 503
	// ServiceUnavailableException whole, delivering nothing.
	Throttle float64
	// RecordFailure is the probability that one record of a PutRecordBatch
	// fails with ErrorCode ServiceUnavailableException; the call's other
	// records are delivered.
	RecordFailure float64
	// InternalFailure is the probability that one record fails with
	// ErrorCode InternalFailure.
	InternalFailure float64
}

// Validate reports the first thing wrong with c.
func (c *FirehoseConfig) Validate() error {
	if c.Dir == "" {
		return errors.New("proxy: Firehose.Dir is required")
	}
	if c.RecordsPerSecond < 0 || c.BytesPerSecond < 0 {
		return errors.New("proxy: Firehose limits must not be negative")
	}
	return c.Faults.Validate()
}

// Validate reports the first thing wrong with f.
func (f FirehoseFaults) Validate() error {
	return validateFaults("Firehose", map[string]float64{
		"Throttle": f.Throttle, "RecordFailure": f.RecordFailure, "InternalFailure": f.InternalFailure,
	}, 0, 0, nil, nil)
}

// firehoseState is the emulated delivery streams.
type firehoseState struct {
	mu      sync.Mutex
	faults  FirehoseFaults
	streams map[string]*deliveryStream
}

type deliveryStream struct {
	mu             sync.Mutex // serialises the files of one stream
	dir            string
	next           int
	records, bytes *bucket // nil when unlimited
	delivered      atomic.Int64
}

func newFirehoseState(c *FirehoseConfig) *firehoseState {
	return &firehoseState{faults: c.Faults, streams: map[string]*deliveryStream{}}
}

// SetFirehoseFaults replaces the Firehose faults while the proxy runs. It
// fails when the proxy does not emulate Firehose.
func (p *Proxy) SetFirehoseFaults(f FirehoseFaults) error {
	if p.fh == nil {
		return errors.New("proxy: Firehose emulation is off (Config.Firehose)")
	}
	if err := f.Validate(); err != nil {
		return err
	}
	p.fh.mu.Lock()
	defer p.fh.mu.Unlock()
	p.fh.faults = f
	return nil
}

// FirehoseDelivered returns how many records the delivery stream name has
// delivered to its folder.
func (p *Proxy) FirehoseDelivered(name string) int64 {
	if p.fh == nil {
		return 0
	}
	p.fh.mu.Lock()
	ds := p.fh.streams[name]
	p.fh.mu.Unlock()
	if ds == nil {
		return 0
	}
	return ds.delivered.Load()
}

// FirehoseDir returns the folder of a delivery stream's delivered records.
func (p *Proxy) FirehoseDir(name string) string { return filepath.Join(p.cfg.Firehose.Dir, name) }

// isFirehose reports whether r is a Firehose call.
func isFirehose(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), firehoseTargetPrefix)
}

// stream returns the delivery stream name, creating it on first use.
func (f *firehoseState) stream(cfg *FirehoseConfig, name string, now time.Time) (*deliveryStream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ds, ok := f.streams[name]
	if ok {
		return ds, nil
	}
	dir := filepath.Join(cfg.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ds = &deliveryStream{dir: dir}
	if cfg.RecordsPerSecond > 0 {
		ds.records = newBucket(cfg.RecordsPerSecond, now)
	}
	if cfg.BytesPerSecond > 0 {
		ds.bytes = newBucket(cfg.BytesPerSecond, now)
	}
	f.streams[name] = ds
	return ds, nil
}

// admit takes n records and size bytes from the stream's limits, or
// reports false and takes nothing.
func (ds *deliveryStream) admit(n, size int, now time.Time) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for _, b := range []*bucket{ds.records, ds.bytes} {
		if b != nil {
			b.refill(now)
		}
	}
	if (ds.records != nil && !ds.records.has(float64(n))) || (ds.bytes != nil && !ds.bytes.has(float64(size))) {
		return false
	}
	if ds.records != nil {
		ds.records.level -= float64(n)
	}
	if ds.bytes != nil {
		ds.bytes.level -= float64(size)
	}
	return true
}

// deliver writes the records of one call to the stream's next file.
func (ds *deliveryStream) deliver(recs [][]byte) error {
	if len(recs) == 0 {
		return nil
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.next++
	name := filepath.Join(ds.dir, fmt.Sprintf("%09d", ds.next))
	f, err := os.Create(name + ".tmp")
	if err != nil {
		return err
	}
	for _, r := range recs {
		if _, err = f.Write(r); err != nil {
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name+".tmp", name)
	}
	if err == nil {
		ds.delivered.Add(int64(len(recs)))
	}
	return err
}

type firehoseRecord struct {
	Data []byte // base64 in JSON
}

// serveFirehose answers one Firehose call.
func (p *Proxy) serveFirehose(w http.ResponseWriter, r *http.Request) {
	p.stats.requests.Add(1)
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), firehoseTargetPrefix)
	fail := func(status int, code, format string, args ...any) {
		writeError(w, kinesisService, awsError{status: status, code: code, message: fmt.Sprintf(format, args...)})
	}
	if r.Method != http.MethodPost {
		p.stats.badRequests.Add(1)
		fail(http.StatusMethodNotAllowed, codeUnknownOperation, "proxy: only POST is served, not %s", r.Method)
		return
	}
	if op != "PutRecordBatch" && op != "PutRecord" {
		p.stats.badRequests.Add(1)
		fail(http.StatusBadRequest, codeUnknownOperation, "proxy: the Firehose emulation answers PutRecordBatch and PutRecord, not %q", op)
		return
	}
	p.stats.countCall("Firehose." + op)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return // the client went away, or a body no call can have
	}
	var in struct {
		DeliveryStreamName string
		Records            []firehoseRecord
		Record             *firehoseRecord
	}
	if err := json.Unmarshal(body, &in); err != nil {
		p.stats.badRequests.Add(1)
		fail(http.StatusBadRequest, codeSerialization, "%v", err)
		return
	}
	if op == "PutRecord" {
		if in.Record == nil {
			p.stats.badRequests.Add(1)
			fail(http.StatusBadRequest, codeValidation, "Record is required")
			return
		}
		in.Records = []firehoseRecord{*in.Record}
	}
	if !deliveryStreamName.MatchString(in.DeliveryStreamName) {
		p.stats.badRequests.Add(1)
		fail(http.StatusBadRequest, codeValidation, "DeliveryStreamName %q: want 1 to 64 characters of [a-zA-Z0-9_.-]", in.DeliveryStreamName)
		return
	}
	if e := p.checkAccessKey(r.Header, in.DeliveryStreamName, "firehose:"+op); e != nil {
		writeError(w, kinesisService, *e)
		return
	}
	size := 0
	for i, rec := range in.Records {
		if rec.Data == nil {
			p.stats.badRequests.Add(1)
			fail(http.StatusBadRequest, codeValidation, "Records[%d].Data is required", i)
			return
		}
		if len(rec.Data) > firehoseMaxRecordBytes {
			p.stats.badRequests.Add(1)
			fail(http.StatusBadRequest, codeValidation, "Records[%d].Data is %d bytes, more than %d", i, len(rec.Data), firehoseMaxRecordBytes)
			return
		}
		size += len(rec.Data)
	}
	if n := len(in.Records); n == 0 || n > firehoseMaxBatch {
		p.stats.badRequests.Add(1)
		fail(http.StatusBadRequest, codeValidation, "Records has %d entries, want 1 to %d", n, firehoseMaxBatch)
		return
	}
	if size > firehoseMaxBatchBytes {
		p.stats.badRequests.Add(1)
		fail(http.StatusBadRequest, codeFirehoseInvalidArg, "records total %d bytes, more than %d per call", size, firehoseMaxBatchBytes)
		return
	}
	now := p.cfg.Now()
	ds, err := p.fh.stream(p.cfg.Firehose, in.DeliveryStreamName, now)
	if err != nil {
		fail(http.StatusInternalServerError, codeInternalFailure, "proxy: %v", err)
		return
	}

	// Faults, drawn in a fixed order from the proxy's seeded source.
	p.fh.mu.Lock()
	faults := p.fh.faults
	p.fh.mu.Unlock()
	throttled := p.failEntry(faults.Throttle)
	if throttled || !ds.admit(len(in.Records), size, now) {
		p.stats.throttled.Add(1)
		fail(http.StatusServiceUnavailable, codeFirehoseUnavailable, "Slow down.")
		return
	}
	type result struct {
		RecordId     string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	results := make([]result, len(in.Records))
	var ok [][]byte
	failed := 0
	for i, rec := range in.Records {
		switch {
		case op == "PutRecordBatch" && p.failEntry(faults.RecordFailure):
			results[i] = result{ErrorCode: codeFirehoseUnavailable, ErrorMessage: "Slow down."}
		case op == "PutRecordBatch" && p.failEntry(faults.InternalFailure):
			results[i] = result{ErrorCode: codeInternalFailure, ErrorMessage: "Internal service failure (injected by proxy)."}
		default:
			results[i] = result{RecordId: requestID() + requestID()}
			ok = append(ok, rec.Data)
			continue
		}
		failed++
	}
	p.stats.faults.Add(int64(failed))
	if err := ds.deliver(ok); err != nil {
		fail(http.StatusInternalServerError, codeInternalFailure, "proxy: delivering: %v", err)
		return
	}
	var out []byte
	if op == "PutRecord" {
		out, _ = json.Marshal(struct {
			RecordId  string
			Encrypted bool
		}{results[0].RecordId, false})
	} else {
		out, _ = json.Marshal(struct {
			FailedPutCount   int
			Encrypted        bool
			RequestResponses []result
		}{failed, false, results})
	}
	writeJSON(w, kinesisService, out)
}

// FirehoseData returns what the delivery stream name has delivered so
// far: the data of its accepted records, in the order they were accepted.
func (p *Proxy) FirehoseData(name string) ([]byte, error) {
	if p.fh == nil {
		return nil, errors.New("proxy: Firehose emulation is off (Config.Firehose)")
	}
	p.fh.mu.Lock()
	ds := p.fh.streams[name]
	p.fh.mu.Unlock()
	if ds == nil {
		return nil, nil
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	var out []byte
	for i := 1; i <= ds.next; i++ {
		b, err := os.ReadFile(filepath.Join(ds.dir, fmt.Sprintf("%09d", i)))
		if errors.Is(err, os.ErrNotExist) {
			continue // a call whose delivery failed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}
