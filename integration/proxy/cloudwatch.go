package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
	"go.uber.org/zap"
)

// The proxy answers CloudWatch GetMetricData for Kinesis's shard-level
// write metrics (namespace AWS/Kinesis, dimensions StreamName and ShardId:
// IncomingBytes, IncomingRecords, WriteProvisionedThroughputExceeded, with
// the statistic Sum), from what its per-shard write limits admitted and
// refused, so that code reading those metrics on AWS reads them here the
// same way. Kinesis emits them once shard-level metrics are enabled
// (EnableEnhancedMonitoring); the proxy always counts.
//
// CloudWatch's API is served over the Smithy RPC v2 CBOR protocol, which
// aws-sdk-go-v2's CloudWatch client speaks: POST
// /service/GraniteServiceVersion20100801/operation/GetMetricData with the
// header Smithy-Protocol: rpc-v2-cbor and a CBOR body; timestamps are CBOR
// tag 1 (epoch seconds).
//
// Counts are kept per second for the last cloudWatchRetention, so that any
// Period of whole seconds can be asked for: on AWS shard-level metrics
// have a 1-minute resolution (Period a multiple of 60), and tests ask for
// seconds to run in seconds. A datapoint is given for each period that has
// ended since the shard's first write (zero sums included); the period in
// progress has none yet, as on AWS, where a minute's datapoint appears
// after it.

const (
	cloudWatchPathPrefix = "/service/GraniteServiceVersion20100801/operation/"
	cloudWatchRetention  = time.Hour
	// maxMetricDataQueries is CloudWatch's limit of queries per
	// GetMetricData call.
	maxMetricDataQueries = 500
)

// isCloudWatch reports whether r is a CloudWatch request (RPC v2 CBOR).
func isCloudWatch(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, cloudWatchPathPrefix) && strings.EqualFold(r.Header.Get("Smithy-Protocol"), "rpc-v2-cbor")
}

// secondCounts are one shard's writes in one second.
type secondCounts struct {
	bytes, records, throttled float64
}

// shardSeries is one shard's per-second counts.
type shardSeries struct {
	first time.Time // the second of the first write seen
	secs  map[int64]*secondCounts
}

// writeMetrics counts the writes the limits admitted and refused, per shard
// (keyed as the limiter keys them: region/stream/shard) and second.
type writeMetrics struct {
	mu     sync.Mutex
	shards map[string]*shardSeries
}

func newWriteMetrics() *writeMetrics { return &writeMetrics{shards: map[string]*shardSeries{}} }

// observe counts one record of size bytes written to the shard key:
// admitted (IncomingRecords, IncomingBytes) or refused
// (WriteProvisionedThroughputExceeded).
func (m *writeMetrics) observe(key string, size int, admitted bool, now time.Time) {
	sec := now.Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.shards[key]
	if !ok {
		s = &shardSeries{first: time.Unix(sec, 0), secs: map[int64]*secondCounts{}}
		m.shards[key] = s
	}
	c, ok := s.secs[sec]
	if !ok {
		c = &secondCounts{}
		s.secs[sec] = c
		for old := range s.secs { // a new second: drop those past retention
			if old < sec-int64(cloudWatchRetention/time.Second) {
				delete(s.secs, old)
			}
		}
	}
	if admitted {
		c.records++
		c.bytes += float64(size)
	} else {
		c.throttled++
	}
}

// sums returns the shard's sum of a metric for each period of period
// seconds starting at the given epoch seconds, and whether the shard had
// been seen by then; false for an unknown shard.
func (m *writeMetrics) sums(key, metric string, starts []int64, period int64) ([]float64, []bool, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.shards[key]
	if !ok {
		return nil, nil, false
	}
	out := make([]float64, len(starts))
	seen := make([]bool, len(starts))
	for i, start := range starts {
		seen[i] = start+period > s.first.Unix()
		for sec := start; sec < start+period; sec++ {
			c, ok := s.secs[sec]
			if !ok {
				continue
			}
			switch metric {
			case "IncomingBytes":
				out[i] += c.bytes
			case "IncomingRecords":
				out[i] += c.records
			case "WriteProvisionedThroughputExceeded":
				out[i] += c.throttled
			}
		}
	}
	return out, seen, true
}

// cloudWatchMetrics are the metrics the proxy answers.
var cloudWatchMetrics = map[string]bool{"IncomingBytes": true, "IncomingRecords": true, "WriteProvisionedThroughputExceeded": true}

// metricQuery is one MetricDataQuery of a GetMetricData request.
type metricQuery struct {
	id, label, namespace, metric, stat string
	dims                               map[string]string
	period                             int64
	returnData                         bool
}

func (p *Proxy) serveCloudWatch(w http.ResponseWriter, r *http.Request) {
	p.stats.requests.Add(1)
	op := strings.TrimPrefix(r.URL.Path, cloudWatchPathPrefix)
	p.stats.countCall("CloudWatch." + op)
	fail := func(status int, code, format string, args ...any) {
		p.stats.badRequests.Add(1)
		writeCBOR(w, status, cbor.Map{"__type": cbor.String(code), "message": cbor.String(fmt.Sprintf(format, args...))})
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "InvalidAction", "only POST is served")
		return
	}
	if op != "GetMetricData" {
		fail(http.StatusBadRequest, "InvalidAction", "proxy: CloudWatch operation %q is not served (only GetMetricData)", op)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return
	}
	v, err := cbor.Decode(body)
	in, ok := v.(cbor.Map)
	if err != nil || !ok {
		fail(http.StatusBadRequest, "SerializationException", "GetMetricData: the body is not a CBOR map (%v)", err)
		return
	}
	start, err1 := cbor.AsTime(in["StartTime"])
	end, err2 := cbor.AsTime(in["EndTime"])
	if in["StartTime"] == nil || in["EndTime"] == nil || err1 != nil || err2 != nil {
		fail(http.StatusBadRequest, "ValidationError", "GetMetricData: StartTime and EndTime are required timestamps")
		return
	}
	if !start.Before(end) {
		fail(http.StatusBadRequest, "ValidationError", "GetMetricData: StartTime must be before EndTime")
		return
	}
	queries, msg := parseMetricQueries(in["MetricDataQueries"])
	if msg != "" {
		fail(http.StatusBadRequest, "ValidationError", "GetMetricData: %s", msg)
		return
	}
	descending := true
	if s, ok := in["ScanBy"].(cbor.String); ok && s == "TimestampAscending" {
		descending = false
	}
	region := signingRegion(r.Header)
	now := p.cfg.Now()
	results := cbor.List{}
	for _, q := range queries {
		if !q.returnData {
			continue
		}
		results = append(results, p.metricResult(region, q, start, end, now, descending))
	}
	p.log.Debug("proxy: GetMetricData", zap.Int("queries", len(queries)))
	writeCBOR(w, http.StatusOK, cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}})
}

// metricResult answers one query.
func (p *Proxy) metricResult(region string, q metricQuery, start, end, now time.Time, descending bool) cbor.Value {
	label := q.label
	if label == "" {
		label = q.metric
	}
	var starts []int64
	first := start.Unix() / q.period * q.period // periods aligned on multiples of Period
	for t := first; t < end.Unix(); t += q.period {
		if t+q.period <= now.Unix() { // ended: the period in progress has no datapoint yet
			starts = append(starts, t)
		}
	}
	times, values := cbor.List{}, cbor.List{}
	if q.namespace == "AWS/Kinesis" && cloudWatchMetrics[q.metric] && q.dims["StreamName"] != "" && q.dims["ShardId"] != "" && len(q.dims) == 2 {
		key := region + "/" + q.dims["StreamName"] + "/" + q.dims["ShardId"]
		sums, seen, ok := p.metrics.sums(key, q.metric, starts, q.period)
		if ok {
			for i := range starts {
				j := i
				if descending {
					j = len(starts) - 1 - i
				}
				if seen[j] {
					times = append(times, &cbor.Tag{ID: 1, Value: cbor.Uint(uint64(starts[j]))})
					values = append(values, cbor.Float64(sums[j]))
				}
			}
		}
	}
	return cbor.Map{"Id": cbor.String(q.id), "Label": cbor.String(label), "Timestamps": times, "Values": values,
		"StatusCode": cbor.String("Complete"), "Messages": cbor.List{}}
}

// parseMetricQueries reads MetricDataQueries; a non-empty message says
// what is wrong.
func parseMetricQueries(v cbor.Value) ([]metricQuery, string) {
	list, ok := v.(cbor.List)
	if !ok || len(list) == 0 {
		return nil, "MetricDataQueries is required"
	}
	if len(list) > maxMetricDataQueries {
		return nil, fmt.Sprintf("%d MetricDataQueries, at most %d allowed", len(list), maxMetricDataQueries)
	}
	str := func(m cbor.Map, k string) string {
		s, _ := m[k].(cbor.String)
		return string(s)
	}
	out := make([]metricQuery, 0, len(list))
	ids := map[string]bool{}
	for i, e := range list {
		m, ok := e.(cbor.Map)
		if !ok {
			return nil, fmt.Sprintf("MetricDataQueries[%d] is not a structure", i)
		}
		q := metricQuery{id: str(m, "Id"), label: str(m, "Label"), returnData: true, dims: map[string]string{}}
		if q.id == "" || q.id[0] < 'a' || q.id[0] > 'z' || ids[q.id] {
			return nil, fmt.Sprintf("MetricDataQueries[%d]: Id %q must be unique and start with a lowercase letter", i, q.id)
		}
		ids[q.id] = true
		if b, ok := m["ReturnData"].(cbor.Bool); ok {
			q.returnData = bool(b)
		}
		if str(m, "Expression") != "" {
			return nil, fmt.Sprintf("MetricDataQueries[%d]: metric math expressions are not served by the proxy", i)
		}
		stat, ok := m["MetricStat"].(cbor.Map)
		if !ok {
			return nil, fmt.Sprintf("MetricDataQueries[%d]: MetricStat is required", i)
		}
		q.stat = str(stat, "Stat")
		if q.stat != "Sum" {
			return nil, fmt.Sprintf("MetricDataQueries[%d]: statistic %q is not served by the proxy (only Sum)", i, q.stat)
		}
		period, err := cbor.AsInt64(stat["Period"])
		if stat["Period"] == nil || err != nil || period < 1 {
			return nil, fmt.Sprintf("MetricDataQueries[%d]: Period must be a positive number of seconds", i)
		}
		q.period = period
		metric, _ := stat["Metric"].(cbor.Map)
		q.namespace, q.metric = str(metric, "Namespace"), str(metric, "MetricName")
		dims, _ := metric["Dimensions"].(cbor.List)
		for _, d := range dims {
			dm, _ := d.(cbor.Map)
			q.dims[str(dm, "Name")] = str(dm, "Value")
		}
		out = append(out, q)
	}
	return out, ""
}

func writeCBOR(w http.ResponseWriter, status int, v cbor.Value) {
	b := cbor.Encode(v)
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
