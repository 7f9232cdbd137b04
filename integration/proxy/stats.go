package proxy

import "sync/atomic"

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
}

type counters struct {
	requests, forwarded, putRequests, records, userRecords, bytes, throttled, faults, badRequests atomic.Int64
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	c := &p.stats
	return Stats{
		Requests: c.requests.Load(), Forwarded: c.forwarded.Load(), PutRequests: c.putRequests.Load(),
		Records: c.records.Load(), UserRecords: c.userRecords.Load(), Bytes: c.bytes.Load(),
		Throttled: c.throttled.Load(), Faults: c.faults.Load(), BadRequests: c.badRequests.Load(),
	}
}
