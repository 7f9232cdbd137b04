package proxy

import (
	"sync"
	"sync/atomic"
)

// Stats are the proxy's counters since Start.
type Stats struct {
	// Requests counts the requests received for either service (GET /stats
	// is not counted).
	Requests int64 `json:"requests"`
	// Forwarded counts the requests sent upstream (including the ListShards
	// calls the proxy makes itself).
	Forwarded int64 `json:"forwarded"`
	// PutRequests counts the PutRecord and PutRecords calls that reached the
	// limits (well-formed, not failed by a whole-request fault).
	PutRequests int64 `json:"put_requests"`
	// Records counts the Kinesis records accepted: written upstream or, in
	// sink mode, answered by the proxy.
	Records int64 `json:"records"`
	// UserRecords counts the user records in the accepted records: a KPL
	// aggregated record counts as the records it holds, any other record as one.
	UserRecords int64 `json:"user_records"`
	// Bytes counts the data bytes of the accepted records (partition keys not
	// included).
	Bytes int64 `json:"bytes"`
	// Throttled counts the PutRecords entries and the calls (PutRecord,
	// GetRecords, and control-plane calls under ControlPlaneLimits) rejected
	// by a limit.
	Throttled int64 `json:"throttled"`
	// Faults counts the injected faults: failed entries, error responses and
	// closed connections (not added latency).
	Faults int64 `json:"faults"`
	// BadRequests counts the requests the proxy rejected as malformed
	// (unknown operation, bad JSON, invalid parameters, oversized body).
	BadRequests int64 `json:"bad_requests"`
	// Calls counts the requests received per operation, keyed by service and
	// operation such as "Kinesis.PutRecords" or "DynamoDB.UpdateItem"
	// (unknown operations are not counted here).
	Calls map[string]int64 `json:"calls"`
}

type counters struct {
	requests, forwarded, putRequests, records, userRecords, bytes, throttled, faults, badRequests atomic.Int64

	calls sync.Map // "Service.Operation" -> *atomic.Int64
}

func (c *counters) call(s service, op string) {
	key := s.String() + "." + op
	n, ok := c.calls.Load(key)
	if !ok {
		n, _ = c.calls.LoadOrStore(key, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(1)
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	c := &p.stats
	calls := make(map[string]int64)
	c.calls.Range(func(k, v any) bool {
		calls[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return Stats{
		Requests: c.requests.Load(), Forwarded: c.forwarded.Load(), PutRequests: c.putRequests.Load(),
		Records: c.records.Load(), UserRecords: c.userRecords.Load(), Bytes: c.bytes.Load(),
		Throttled: c.throttled.Load(), Faults: c.faults.Load(), BadRequests: c.badRequests.Load(),
		Calls: calls,
	}
}
