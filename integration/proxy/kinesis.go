package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"go.uber.org/zap"
)

// Kinesis request limits.
const (
	maxPutRecordsEntries = 500
	maxPutRecordsBytes   = 5 << 20
	maxRecordBytes       = 1 << 20 // checked in sink mode only
	maxPartitionKeyChars = 256
)

// putEntry is a PutRecords entry, and the body of PutRecord.
type putEntry struct {
	Data            []byte  // base64 in JSON
	PartitionKey    *string `json:",omitempty"`
	ExplicitHashKey *string `json:",omitempty"`
}

type putResult struct {
	SequenceNumber string `json:",omitempty"`
	ShardId        string `json:",omitempty"`
	ErrorCode      string `json:",omitempty"`
	ErrorMessage   string `json:",omitempty"`
}

func badRequest(code, format string, args ...any) *awsError {
	return &awsError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// check validates an entry as Kinesis does and returns its hash key. index
// is the entry's position in PutRecords, or -1 for PutRecord.
func (e *putEntry) check(index int, sink bool) (hashkey.Key, *awsError) {
	what := entryName(index)
	if e.PartitionKey == nil {
		return hashkey.Key{}, badRequest(codeValidation, "%s: PartitionKey is required", what)
	}
	if n := utf8.RuneCountInString(*e.PartitionKey); n < 1 || n > maxPartitionKeyChars {
		return hashkey.Key{}, badRequest(codeValidation, "%s: PartitionKey has %d characters, want 1 to %d", what, n, maxPartitionKeyChars)
	}
	if e.Data == nil {
		return hashkey.Key{}, badRequest(codeValidation, "%s: Data is required", what)
	}
	if sink && len(e.Data) > maxRecordBytes {
		return hashkey.Key{}, badRequest(codeValidation, "%s: Data is %d bytes, more than %d", what, len(e.Data), maxRecordBytes)
	}
	if e.ExplicitHashKey != nil {
		k, err := hashkey.Parse(*e.ExplicitHashKey)
		if err != nil {
			return hashkey.Key{}, badRequest(codeInvalidArgument, "%s: invalid ExplicitHashKey %q: must be a decimal integer in [0, 2^128-1]", what, *e.ExplicitHashKey)
		}
		return k, nil
	}
	return hashkey.FromPartitionKey(*e.PartitionKey), nil
}

// entryName names an entry in error messages: it is a fmt.Stringer so that
// the name is only formatted for an error.
type entryName int

func (i entryName) String() string {
	if i < 0 {
		return "PutRecord"
	}
	return "PutRecords: record " + strconv.Itoa(int(i))
}

// size is what an entry counts against the write limits.
func (e *putEntry) size() int { return len(e.Data) + len(*e.PartitionKey) }

func checkStream(ref streamRef) *awsError {
	if ref.Name == "" && ref.ARN == "" {
		return badRequest(codeValidation, "either StreamName or StreamARN is required")
	}
	return nil
}

// shardsFor finds the open shard of each hash key, listing the stream's
// shards again once if a key falls in no known open shard.
func (p *Proxy) shardsFor(ctx context.Context, h http.Header, ref streamRef, keys []hashkey.Key) ([]shardInfo, error) {
	notBefore := time.Time{}
	for attempt := 0; ; attempt++ {
		m, err := p.shards.get(ctx, h, ref, notBefore)
		if err != nil {
			return nil, err
		}
		out := make([]shardInfo, len(keys))
		missing := false
		for i, k := range keys {
			sh, ok := m.find(k)
			if !ok {
				missing = true
				break
			}
			out[i] = sh
		}
		if !missing {
			return out, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("stream %s: no open shard for some hash key", ref.name())
		}
		notBefore = time.Now()
	}
}

// passThrough answers a write whose shards could not be found: forwarded
// unchanged (the upstream gives the error it would give, such as
// ResourceNotFoundException) or, in sink mode, the upstream's error.
func (p *Proxy) passThrough(ctx context.Context, h http.Header, body []byte, err error) response {
	var ue *upstreamError
	if p.sink != nil {
		if errors.As(err, &ue) {
			return ue.resp
		}
		return errorResponse(kinesisService, awsError{status: http.StatusInternalServerError, code: codeInternalFailure, message: "proxy: " + err.Error()})
	}
	if !errors.As(err, &ue) {
		p.log.Warn("proxy: shard lookup failed, forwarding unchanged", zap.Error(err))
	}
	resp, ferr := p.forward(ctx, kinesisService, h, body)
	if ferr != nil {
		return errorResponse(kinesisService, upstreamFailure(ferr))
	}
	return resp
}

func (p *Proxy) countAccepted(data []byte) {
	p.stats.records.Add(1)
	p.stats.bytes.Add(int64(len(data)))
	p.stats.userRecords.Add(int64(userRecords(data)))
}

func (p *Proxy) bad(e *awsError) response {
	p.stats.badRequests.Add(1)
	return errorResponse(kinesisService, *e)
}

func throttledMessage(shard string, ref streamRef) string {
	return fmt.Sprintf("Rate exceeded for shard %s in stream %s.", shard, ref.name())
}

func (p *Proxy) putRecords(ctx context.Context, h http.Header, body []byte, failProb float64) response {
	var in struct {
		streamRef
		Records []putEntry
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return p.bad(badRequest(codeSerialization, "PutRecords: %v", err))
	}
	if e := checkStream(in.streamRef); e != nil {
		return p.bad(e)
	}
	if n := len(in.Records); n < 1 || n > maxPutRecordsEntries {
		return p.bad(badRequest(codeValidation, "PutRecords: %d records, want 1 to %d", n, maxPutRecordsEntries))
	}
	entries := in.Records
	keys := make([]hashkey.Key, len(entries))
	total := 0
	for i := range entries {
		k, e := entries[i].check(i, p.sink != nil)
		if e != nil {
			return p.bad(e)
		}
		keys[i] = k
		total += entries[i].size()
	}
	if total > maxPutRecordsBytes {
		return p.bad(badRequest(codeInvalidArgument, "PutRecords: records size %d bytes exceeds the 5 MiB limit", total))
	}
	p.stats.putRequests.Add(1)
	shards, err := p.shardsFor(ctx, h, in.streamRef, keys)
	if err != nil {
		return p.passThrough(ctx, h, body, err)
	}
	stream := streamKey(h, in.streamRef)

	results := make([]putResult, len(entries))
	var accepted []int
	failed := 0
	for i := range entries {
		switch {
		case p.failEntry(failProb):
			results[i] = putResult{ErrorCode: codeInternalFailure, ErrorMessage: "Internal service failure."}
			p.stats.faults.Add(1)
			failed++
		case !p.cfg.NoLimits && !p.limits.write(stream+"/"+shards[i].id, entries[i].size()):
			results[i] = putResult{ErrorCode: codeProvisionedThroughput, ErrorMessage: throttledMessage(shards[i].id, in.streamRef)}
			p.stats.throttled.Add(1)
			failed++
		default:
			accepted = append(accepted, i)
		}
	}
	p.log.Debug("proxy: PutRecords", zap.String("stream", in.name()), zap.Int("entries", len(entries)),
		zap.Int("accepted", len(accepted)), zap.Int("rejected", failed))
	encryption := ""
	if p.sink != nil {
		for _, i := range accepted {
			results[i] = putResult{ShardId: shards[i].id, SequenceNumber: p.sink.sequenceNumber(stream + "/" + shards[i].id)}
			p.countAccepted(entries[i].Data)
		}
		encryption = "NONE"
	} else if len(accepted) > 0 {
		var top map[string]json.RawMessage
		_ = json.Unmarshal(body, &top) // parsed above
		sub := make([]putEntry, len(accepted))
		for j, i := range accepted {
			sub[j] = entries[i]
		}
		top["Records"], _ = json.Marshal(sub)
		newBody, _ := json.Marshal(top)
		resp, err := p.forward(ctx, kinesisService, h, newBody)
		if err != nil {
			return errorResponse(kinesisService, upstreamFailure(err))
		}
		if resp.status != http.StatusOK {
			return resp
		}
		var out struct {
			Records        []putResult
			EncryptionType string
		}
		if err := json.Unmarshal(resp.body, &out); err != nil || len(out.Records) != len(accepted) {
			return errorResponse(kinesisService, awsError{status: http.StatusBadGateway, code: codeInternalFailure,
				message: fmt.Sprintf("proxy: upstream PutRecords answer has %d results for %d records (%v)", len(out.Records), len(accepted), err)})
		}
		for j, i := range accepted {
			results[i] = out.Records[j]
			if out.Records[j].ErrorCode != "" {
				failed++
			} else {
				p.countAccepted(entries[i].Data)
			}
		}
		encryption = out.EncryptionType
	}
	out, _ := json.Marshal(struct {
		FailedRecordCount int
		Records           []putResult
		EncryptionType    string `json:",omitempty"`
	}{failed, results, encryption})
	return jsonResponse(kinesisService, out)
}

func (p *Proxy) putRecord(ctx context.Context, h http.Header, body []byte) response {
	var in struct {
		streamRef
		putEntry
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return p.bad(badRequest(codeSerialization, "PutRecord: %v", err))
	}
	if e := checkStream(in.streamRef); e != nil {
		return p.bad(e)
	}
	k, e := in.check(-1, p.sink != nil)
	if e != nil {
		return p.bad(e)
	}
	p.stats.putRequests.Add(1)
	shards, err := p.shardsFor(ctx, h, in.streamRef, []hashkey.Key{k})
	if err != nil {
		return p.passThrough(ctx, h, body, err)
	}
	sh := shards[0]
	shardKey := streamKey(h, in.streamRef) + "/" + sh.id
	if !p.cfg.NoLimits && !p.limits.write(shardKey, in.size()) {
		p.stats.throttled.Add(1)
		p.log.Debug("proxy: PutRecord throttled", zap.String("stream", in.name()), zap.String("shard", sh.id))
		return errorResponse(kinesisService, awsError{status: http.StatusBadRequest, code: codeProvisionedThroughput,
			message: throttledMessage(sh.id, in.streamRef)})
	}
	if p.sink != nil {
		p.countAccepted(in.Data)
		out, _ := json.Marshal(struct {
			ShardId        string
			SequenceNumber string
			EncryptionType string
		}{sh.id, p.sink.sequenceNumber(shardKey), "NONE"})
		return jsonResponse(kinesisService, out)
	}
	resp, err := p.forward(ctx, kinesisService, h, body)
	if err != nil {
		return errorResponse(kinesisService, upstreamFailure(err))
	}
	if resp.status == http.StatusOK {
		p.countAccepted(in.Data)
	}
	return resp
}

func (p *Proxy) getShardIterator(ctx context.Context, h http.Header, body []byte) response {
	if p.cfg.ShardLifecycle {
		var in struct {
			streamRef
			ShardId string
		}
		if json.Unmarshal(body, &in) == nil && in.ShardId != "" && checkStream(in.streamRef) == nil {
			gone, err := p.agedOut(ctx, h, in.streamRef, in.ShardId, true)
			if err != nil {
				return upstreamAnswer(err) // such as ResourceNotFoundException for the stream
			}
			if gone {
				return shardGone(in.ShardId, in.name())
			}
		}
	}
	resp, err := p.forward(ctx, kinesisService, h, body)
	if err != nil {
		return errorResponse(kinesisService, upstreamFailure(err))
	}
	if resp.status != http.StatusOK {
		return resp
	}
	var in struct {
		streamRef
		ShardId string
	}
	var out struct{ ShardIterator string }
	if json.Unmarshal(body, &in) == nil && json.Unmarshal(resp.body, &out) == nil && in.ShardId != "" {
		p.iters.put(out.ShardIterator, iterEntry{
			shardKey: streamKey(h, in.streamRef) + "/" + in.ShardId, shard: in.ShardId, stream: in.name(),
		})
	}
	return resp
}

func (p *Proxy) getRecords(ctx context.Context, h http.Header, body []byte) response {
	var in struct{ ShardIterator string }
	if err := json.Unmarshal(body, &in); err != nil {
		return p.bad(badRequest(codeSerialization, "GetRecords: %v", err))
	}
	it, known := p.iters.get(in.ShardIterator)
	if known && p.cfg.ShardLifecycle {
		if gone, _ := p.agedOut(ctx, h, streamRef{Name: it.stream}, it.shard, false); gone {
			return shardGone(it.shard, it.stream)
		}
	}
	limited := known && !p.cfg.NoLimits
	if limited && !p.limits.readCall(it.shardKey) {
		p.stats.throttled.Add(1)
		p.log.Debug("proxy: GetRecords throttled", zap.String("stream", it.stream), zap.String("shard", it.shard))
		return errorResponse(kinesisService, awsError{status: http.StatusBadRequest, code: codeProvisionedThroughput,
			message: fmt.Sprintf("Rate exceeded for Shard - %s in stream %s.", it.shard, it.stream)})
	}
	resp, err := p.forward(ctx, kinesisService, h, body)
	if err != nil {
		return errorResponse(kinesisService, upstreamFailure(err))
	}
	if resp.status != http.StatusOK || !known {
		return resp
	}
	var out struct {
		Records []struct {
			Data string // base64; only its decoded length is needed
		}
		NextShardIterator *string
	}
	if json.Unmarshal(resp.body, &out) != nil {
		return resp
	}
	if limited {
		n := 0
		for _, r := range out.Records {
			n += base64Len(r.Data)
		}
		p.limits.readBytes(it.shardKey, n)
	}
	if out.NextShardIterator != nil {
		p.iters.put(*out.NextShardIterator, it)
	}
	return resp
}

// base64Len is the decoded length of padded standard base64 text.
func base64Len(s string) int {
	n := len(s) / 4 * 3
	for i := len(s) - 1; i >= 0 && i >= len(s)-2 && s[i] == '='; i-- {
		n--
	}
	return n
}
