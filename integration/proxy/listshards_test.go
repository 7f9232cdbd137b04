package proxy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// lineage is a stream created at t0 with shards 0 and 1; at t1 shard 1
// split into 2 and 3; at t2 shards 0 and 2 merged into 4.
func lineage(t0 time.Time) []*lifeShard {
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	return []*lifeShard{
		{id: "s0", created: t0, closed: t2},
		{id: "s1", created: t0, closed: t1},
		{id: "s2", created: t1, closed: t2},
		{id: "s3", created: t1},
		{id: "s4", created: t2},
	}
}

func ids(shards []*lifeShard) string {
	var out []string
	for _, s := range shards {
		out = append(out, s.id)
	}
	return strings.Join(out, ",")
}

func TestSelectShards(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	const day = 24 * time.Hour
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	for _, tc := range []struct {
		name   string
		now    time.Time
		expire []string // shards aged out by ExpireShard
		q      listQuery
		want   string
	}{
		{"default lists every shard", at(3), nil, listQuery{Filter: filterFromTrimHorizon}, "s0,s1,s2,s3,s4"},
		{"at trim horizon of a young stream: the original shards", at(3), nil, listQuery{Filter: filterAtTrimHorizon}, "s0,s1"},
		{"at latest: the open shards", at(3), nil, listQuery{Filter: filterAtLatest}, "s3,s4"},
		{"at timestamp before the split", at(0.5), nil, listQuery{Filter: filterAtTimestamp, TS: at(0.5)}, "s0,s1"},
		{"at timestamp between split and merge", at(3), nil, listQuery{Filter: filterAtTimestamp, TS: at(1.5)}, "s0,s2,s3"},
		{"at timestamp of the split: parent and children", at(3), nil, listQuery{Filter: filterAtTimestamp, TS: at(1)}, "s0,s1,s2,s3"},
		{"at timestamp after the merge", at(3), nil, listQuery{Filter: filterAtTimestamp, TS: at(2.5)}, "s3,s4"},
		{"from timestamp between split and merge", at(3), nil, listQuery{Filter: filterFromTimestamp, TS: at(1.5)}, "s0,s2,s3,s4"},
		{"from timestamp before the stream", at(3), nil, listQuery{Filter: filterFromTimestamp, TS: at(-5)}, "s0,s1,s2,s3,s4"},
		{"after shard id", at(3), nil, listQuery{Filter: filterAfterShardID, After: "s2"}, "s3,s4"},
		{"exclusive start shard id", at(3), nil, listQuery{Filter: filterAtLatest, After: "s3"}, "s4"},

		{"expired shard is never listed", at(3), []string{"s1"}, listQuery{Filter: filterFromTrimHorizon}, "s0,s2,s3,s4"},
		{"trim horizon moves past an expired shard", at(3), []string{"s1"}, listQuery{Filter: filterAtTrimHorizon}, "s0,s2,s3"},
		{"at timestamp skips an expired shard", at(3), []string{"s1"}, listQuery{Filter: filterAtTimestamp, TS: at(0.5)}, "s0"},
		{"from timestamp corrected to the trim horizon", at(3), []string{"s2"}, listQuery{Filter: filterFromTimestamp, TS: at(0)}, "s0,s3,s4"},

		{"retention: s1 closed a day ago ages out", at(1).Add(day), nil, listQuery{Filter: filterFromTrimHorizon}, "s0,s2,s3,s4"},
		{"retention: trim horizon a day ago", at(1.5).Add(day), nil, listQuery{Filter: filterAtTrimHorizon}, "s0,s2,s3"},
		{"retention: everything closed aged out", at(2).Add(day), nil, listQuery{Filter: filterFromTrimHorizon}, "s3,s4"},
		{"retention: at trim horizon after the merge aged out", at(2).Add(day), nil, listQuery{Filter: filterAtTrimHorizon}, "s3,s4"},
		{"retention: just inside", at(2).Add(day - time.Nanosecond), nil, listQuery{Filter: filterAtTrimHorizon}, "s0,s2,s3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shards := lineage(t0)
			for _, s := range shards {
				s.expired = slices.Contains(tc.expire, s.id)
			}
			if got := ids(selectShards(shards, tc.q, t0, tc.now, day)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestListPage(t *testing.T) {
	shards := lineage(time.Unix(1e9, 0))
	for _, s := range shards {
		s.raw = json.RawMessage(`{"ShardId":"` + s.id + `"}`)
	}
	q := listQuery{Stream: "st", Filter: filterFromTrimHorizon, Made: time.Unix(1e9, 0)}
	var got []string
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("too many pages")
		}
		var out struct {
			Shards    []struct{ ShardId string }
			NextToken string
		}
		if err := json.Unmarshal(listPage(selectShards(shards, q, time.Unix(1e9, 0), time.Unix(1e9, 0), DefaultRetention), q, 2), &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Shards) > 2 || len(out.Shards) == 0 {
			t.Fatalf("page of %d shards", len(out.Shards))
		}
		for _, s := range out.Shards {
			got = append(got, s.ShardId)
		}
		if out.NextToken == "" {
			break
		}
		var ok bool
		if q, ok = parseToken(out.NextToken); !ok {
			t.Fatalf("bad token %q", out.NextToken)
		}
	}
	if strings.Join(got, ",") != "s0,s1,s2,s3,s4" {
		t.Errorf("pages list %v", got)
	}
}

func TestListShardsInputParse(t *testing.T) {
	now := time.Unix(1e9, 0)
	tok := listQuery{Stream: "st", Filter: filterAtLatest, After: "s1", Made: now}.token()
	for _, tc := range []struct {
		body     string
		wantCode string // "" for accepted
		wantQ    listQuery
		wantPage int
	}{
		{`{"StreamName":"st"}`, "", listQuery{Stream: "st", Filter: filterFromTrimHorizon, Made: now}, 1000},
		{`{"StreamName":"st","MaxResults":10000}`, "", listQuery{Stream: "st", Filter: filterFromTrimHorizon, Made: now}, 1000},
		{`{"StreamName":"st","MaxResults":3,"ExclusiveStartShardId":"s1"}`, "", listQuery{Stream: "st", Filter: filterFromTrimHorizon, After: "s1", Made: now}, 3},
		{`{"StreamARN":"arn:aws:kinesis:us-east-1:0:stream/st","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":1000000000.5}}`, "",
			listQuery{Stream: "arn:aws:kinesis:us-east-1:0:stream/st", Filter: filterAtTimestamp, TS: now.Add(500 * time.Millisecond), Made: now}, 1000},
		{`{"StreamName":"st","ShardFilter":{"Type":"AFTER_SHARD_ID","ShardId":"s2"},"ExclusiveStartShardId":"s1"}`, "", listQuery{Stream: "st", Filter: filterAfterShardID, After: "s2", Made: now}, 1000},
		{`{"NextToken":"` + tok + `","MaxResults":5}`, "", listQuery{Stream: "st", Filter: filterAtLatest, After: "s1", Made: now}, 5},

		{`{}`, codeInvalidArgument, listQuery{}, 0},
		{`{"StreamName":"st","MaxResults":0}`, codeValidation, listQuery{}, 0},
		{`{"StreamName":"st","MaxResults":10001}`, codeValidation, listQuery{}, 0},
		{`{"StreamName":"st","NextToken":"` + tok + `"}`, codeInvalidArgument, listQuery{}, 0},
		{`{"NextToken":"` + tok + `","ExclusiveStartShardId":"s1"}`, codeInvalidArgument, listQuery{}, 0},
		{`{"NextToken":"garbage"}`, codeInvalidArgument, listQuery{}, 0},
		{`{"StreamName":"st","ShardFilter":{"Type":"AFTER_SHARD_ID"}}`, codeInvalidArgument, listQuery{}, 0},
		{`{"StreamName":"st","ShardFilter":{"Type":"FROM_TIMESTAMP"}}`, codeInvalidArgument, listQuery{}, 0},
		{`{"StreamName":"st","ShardFilter":{"Type":"AT_LATEST","ShardId":"s1"}}`, codeInvalidArgument, listQuery{}, 0},
		{`{"StreamName":"st","ShardFilter":{"Type":"AT_LATEST","Timestamp":1}}`, codeInvalidArgument, listQuery{}, 0},
		{`{"StreamName":"st","ShardFilter":{"Type":"LATEST"}}`, codeValidation, listQuery{}, 0},
		{`{"StreamName":"st","ShardFilter":{}}`, codeValidation, listQuery{}, 0},
		{`{"StreamName":"st","ExclusiveStartShardId":"a b"}`, codeValidation, listQuery{}, 0},
	} {
		var in listShardsInput
		if err := json.Unmarshal([]byte(tc.body), &in); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		q, page, e := in.parse(now)
		switch {
		case tc.wantCode != "":
			if e == nil || e.code != tc.wantCode {
				t.Errorf("%s: got %+v, want %s", tc.body, e, tc.wantCode)
			}
		case e != nil:
			t.Errorf("%s: %s: %s", tc.body, e.code, e.message)
		case !q.TS.Equal(tc.wantQ.TS) || !q.Made.Equal(tc.wantQ.Made) || q.Stream != tc.wantQ.Stream || q.Filter != tc.wantQ.Filter || q.After != tc.wantQ.After || page != tc.wantPage:
			t.Errorf("%s: got %+v page %d, want %+v page %d", tc.body, q, page, tc.wantQ, tc.wantPage)
		}
	}
	// "Tokens expire after 300 seconds."
	var in listShardsInput
	_ = json.Unmarshal([]byte(`{"NextToken":"`+tok+`"}`), &in)
	if _, _, e := in.parse(now.Add(300 * time.Second)); e != nil {
		t.Errorf("token 300s old: %s", e.code)
	}
	if _, _, e := in.parse(now.Add(301 * time.Second)); e == nil || e.code != codeExpiredNextToken {
		t.Errorf("token 301s old: got %+v, want %s", e, codeExpiredNextToken)
	}
}
