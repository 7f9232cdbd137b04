package proxy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"time"
)

// ListShards limits, from the Kinesis API reference (ListShards).
const (
	// MaxResults is between 1 and 10,000; the default page, and the largest
	// one returned whatever MaxResults says, is 1,000 shards.
	listShardsMaxResults = 10000
	listShardsPage       = 1000
	// "Tokens expire after 300 seconds."
	nextTokenLife = 300 * time.Second
)

// Error codes of ListShards and GetShardIterator under Config.ShardLifecycle.
const (
	codeResourceNotFound = "ResourceNotFoundException"
	codeExpiredNextToken = "ExpiredNextTokenException"
)

// Shard filter types (ShardFilter.Type).
const (
	filterAfterShardID    = "AFTER_SHARD_ID"
	filterAtTrimHorizon   = "AT_TRIM_HORIZON"
	filterFromTrimHorizon = "FROM_TRIM_HORIZON"
	filterAtLatest        = "AT_LATEST"
	filterAtTimestamp     = "AT_TIMESTAMP"
	filterFromTimestamp   = "FROM_TIMESTAMP"
)

// shardIDPattern is the pattern of ShardId and ExclusiveStartShardId.
var shardIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// listQuery is what a ListShards call and its follow-up pages select.
type listQuery struct {
	Stream string    `json:"s"`           // the stream's name, or ARN when the call named only that
	Filter string    `json:"f"`           // a filter type; FROM_TRIM_HORIZON when the call had none
	TS     time.Time `json:"t,omitzero"`  // AT_TIMESTAMP and FROM_TIMESTAMP
	After  string    `json:"a,omitempty"` // only shards with a greater ID ("" for all)
	Made   time.Time `json:"m"`           // when the first call was answered, for the token's expiry
}

// lifeShard is one shard as the proxy's shard lifecycle knows it.
type lifeShard struct {
	id      string
	parents []string
	raw     json.RawMessage // the shard as the upstream lists it
	created time.Time
	closed  time.Time // zero while the shard is open
	expired bool      // aged out by ExpireShard
}

func (s *lifeShard) open() bool { return s.closed.IsZero() }

// agedOut reports whether the shard is gone from the stream: closed at
// least retention ago, or expired explicitly. Kinesis keeps a closed
// shard, and lists it, until its data is past the retention period.
func (s *lifeShard) agedOut(now time.Time, retention time.Duration) bool {
	return s.expired || (!s.open() && !s.closed.After(now.Add(-retention)))
}

// trimHorizon is the time of the stream's trim horizon: now minus the
// retention period, but not before the stream was created (a stream
// younger than its retention period has all its data), and not before the
// closing of a shard aged out by ExpireShard (its data is gone).
func trimHorizon(shards []*lifeShard, streamCreated, now time.Time, retention time.Duration) time.Time {
	th := now.Add(-retention)
	if th.Before(streamCreated) {
		th = streamCreated
	}
	for _, s := range shards {
		if s.expired && s.closed.After(th) {
			th = s.closed
		}
	}
	return th
}

// selectShards returns the shards q selects from shards (sorted by ID), as
// the Kinesis API reference defines ShardFilter. No filter lists a shard
// that has aged out.
func selectShards(shards []*lifeShard, q listQuery, streamCreated, now time.Time, retention time.Duration) []*lifeShard {
	th := trimHorizon(shards, streamCreated, now, retention)
	var out []*lifeShard
	for _, s := range shards {
		if s.agedOut(now, retention) || (q.After != "" && s.id <= q.After) {
			continue
		}
		var in bool
		switch q.Filter {
		case filterAtTrimHorizon:
			// AT_TRIM_HORIZON: "the response includes all the shards at the
			// TRIM_HORIZON": the shards open then, created at or before it
			// and not closed by it.
			in = !s.created.After(th) && (s.open() || s.closed.After(th))
		case filterAtLatest:
			// AT_LATEST: "only the currently open shards".
			in = s.open()
		case filterAtTimestamp:
			// AT_TIMESTAMP: the shards "whose start timestamp is less than or
			// equal to the given timestamp and end timestamp is greater than
			// or equal to the given timestamp or still open".
			in = !s.created.After(q.TS) && (s.open() || !s.closed.Before(q.TS))
		case filterFromTimestamp:
			// FROM_TIMESTAMP: "all closed shards whose end timestamp is
			// greater than or equal to the given timestamp and also all open
			// shards", the timestamp "corrected to TRIM_HORIZON of the data
			// stream" when it is earlier.
			from := q.TS
			if from.Before(th) {
				from = th
			}
			in = s.open() || !s.closed.Before(from)
		default:
			// FROM_TRIM_HORIZON (the default when there is no filter): "all
			// the shards from the TRIM_HORIZON", every shard within the
			// retention period. AFTER_SHARD_ID: all the shards "starting
			// with the shard whose ID immediately follows ShardId" (q.After).
			in = true
		}
		if in {
			out = append(out, s)
		}
	}
	return out
}

// listShardsInput is the body of a ListShards request.
type listShardsInput struct {
	StreamName              *string
	StreamARN               *string
	NextToken               *string
	ExclusiveStartShardId   *string
	MaxResults              *int64
	StreamCreationTimestamp *float64
	ShardFilter             *struct {
		Type      *string
		ShardId   *string
		Timestamp *float64 // epoch seconds
	}
}

func invalidArgument(format string, args ...any) *awsError {
	return badRequest(codeInvalidArgument, format, args...)
}

// epoch converts epoch seconds, as the JSON protocol sends timestamps, to a
// time, to the microsecond.
func epoch(sec float64) time.Time {
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(math.Round(frac*1e6))*1e3)
}

// parse checks a ListShards request and returns its query and page size.
// A follow-up call (with NextToken) returns the token's query.
func (in *listShardsInput) parse(now time.Time) (listQuery, int, *awsError) {
	page := listShardsPage
	if in.MaxResults != nil {
		// MaxResults: "Minimum value of 1. Maximum value of 10000." and "If
		// you specify a value greater than 1000, at most 1000 results are
		// returned."
		m := *in.MaxResults
		if m < 1 || m > listShardsMaxResults {
			return listQuery{}, 0, badRequest(codeValidation, "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", m, listShardsMaxResults)
		}
		page = int(min(m, listShardsPage))
	}
	if in.NextToken != nil {
		// StreamName, ExclusiveStartShardId and StreamCreationTimestamp:
		// "You cannot specify this parameter if you specify NextToken." The
		// follow-up call carries the token's query, so the proxy also
		// refuses StreamARN and ShardFilter with it.
		for _, p := range []struct {
			name string
			set  bool
		}{
			{"StreamName", in.StreamName != nil}, {"StreamARN", in.StreamARN != nil},
			{"ExclusiveStartShardId", in.ExclusiveStartShardId != nil},
			{"StreamCreationTimestamp", in.StreamCreationTimestamp != nil}, {"ShardFilter", in.ShardFilter != nil},
		} {
			if p.set {
				return listQuery{}, 0, invalidArgument("NextToken and %s cannot be provided together.", p.name)
			}
		}
		q, ok := parseToken(*in.NextToken)
		if !ok {
			return listQuery{}, 0, invalidArgument("Invalid NextToken.")
		}
		// NextToken: "Tokens expire after 300 seconds", answered with
		// ExpiredNextTokenException.
		if now.Sub(q.Made) > nextTokenLife {
			return listQuery{}, 0, badRequest(codeExpiredNextToken, "The timestamp of the NextToken has expired.")
		}
		return q, page, nil
	}
	q := listQuery{Filter: filterFromTrimHorizon, Made: now}
	switch {
	case in.StreamName != nil && *in.StreamName != "":
		q.Stream = *in.StreamName
	case in.StreamARN != nil && *in.StreamARN != "":
		q.Stream = *in.StreamARN
	default:
		return listQuery{}, 0, invalidArgument("Either NextToken or StreamName (or StreamARN) must be provided.")
	}
	if id := in.ExclusiveStartShardId; id != nil {
		if !shardIDPattern.MatchString(*id) {
			return listQuery{}, 0, badRequest(codeValidation, "1 validation error detected: Value '%s' at 'exclusiveStartShardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", *id)
		}
		q.After = *id
	}
	f := in.ShardFilter
	if f == nil {
		return q, page, nil
	}
	if f.Type == nil {
		return listQuery{}, 0, badRequest(codeValidation, "1 validation error detected: Value null at 'shardFilter.type' failed to satisfy constraint: Member must not be null")
	}
	q.Filter = *f.Type
	switch q.Filter {
	case filterAfterShardID:
		// AFTER_SHARD_ID: "you must also provide the value for the
		// optional ShardId property".
		if f.ShardId == nil {
			return listQuery{}, 0, invalidArgument("ShardFilter of type AFTER_SHARD_ID must provide a ShardId.")
		}
		if !shardIDPattern.MatchString(*f.ShardId) {
			return listQuery{}, 0, badRequest(codeValidation, "1 validation error detected: Value '%s' at 'shardFilter.shardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", *f.ShardId)
		}
		q.After = max(q.After, *f.ShardId)
	case filterAtTimestamp, filterFromTimestamp:
		// AT_TIMESTAMP and FROM_TIMESTAMP: "you must also provide the
		// value for the optional Timestamp property".
		if f.Timestamp == nil {
			return listQuery{}, 0, invalidArgument("ShardFilter of type %s must provide a Timestamp.", q.Filter)
		}
		q.TS = epoch(*f.Timestamp)
	case filterAtTrimHorizon, filterFromTrimHorizon, filterAtLatest:
	default:
		return listQuery{}, 0, badRequest(codeValidation, "1 validation error detected: Value '%s' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]", q.Filter)
	}
	if f.ShardId != nil && q.Filter != filterAfterShardID {
		return listQuery{}, 0, invalidArgument("ShardFilter of type %s must not provide a ShardId.", q.Filter)
	}
	if f.Timestamp != nil && q.Filter != filterAtTimestamp && q.Filter != filterFromTimestamp {
		return listQuery{}, 0, invalidArgument("ShardFilter of type %s must not provide a Timestamp.", q.Filter)
	}
	return q, page, nil
}

// A NextToken is the query, as base64url JSON.
func (q listQuery) token() string {
	b, _ := json.Marshal(q)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseToken(tok string) (listQuery, bool) {
	var q listQuery
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || json.Unmarshal(b, &q) != nil || q.Stream == "" || q.Filter == "" || q.Made.IsZero() {
		return listQuery{}, false
	}
	return q, true
}

// listPage is one page of selected shards: at most page of them, and a
// token for the rest when more remain.
func listPage(selected []*lifeShard, q listQuery, page int) []byte {
	var out struct {
		Shards    []json.RawMessage
		NextToken string `json:",omitempty"`
	}
	out.Shards = []json.RawMessage{}
	for i, s := range selected {
		if i == page {
			q.After = selected[i-1].id
			out.NextToken = q.token()
			break
		}
		out.Shards = append(out.Shards, s.raw)
	}
	b, _ := json.Marshal(out)
	return b
}

// resourceNotFound is Kinesis's answer for a shard or stream that does not
// exist.
func resourceNotFound(format string, args ...any) awsError {
	return awsError{status: http.StatusBadRequest, code: codeResourceNotFound, message: fmt.Sprintf(format, args...)}
}
