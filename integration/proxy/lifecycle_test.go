package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeUpstream answers ListShards with its shards (one page) and
// DescribeStreamSummary with its creation time; other calls get {}.
type fakeUpstream struct {
	mu      sync.Mutex
	shards  []string // JSON objects
	created time.Time
}

func (f *fakeUpstream) set(shards ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards = shards
}

func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch strings.TrimPrefix(r.Header.Get("X-Amz-Target"), kinesisTargetPrefix) {
	case "ListShards":
		fmt.Fprintf(w, `{"Shards":[%s]}`, strings.Join(f.shards, ","))
	case "DescribeStreamSummary":
		fmt.Fprintf(w, `{"StreamDescriptionSummary":{"StreamCreationTimestamp":%d}}`, f.created.Unix())
	default:
		fmt.Fprint(w, `{}`)
	}
}

func fakeShard(id string, closed bool, parents ...string) string {
	s := fmt.Sprintf(`{"ShardId":%q`, id)
	if len(parents) > 0 {
		s += fmt.Sprintf(`,"ParentShardId":%q`, parents[0])
	}
	if len(parents) > 1 {
		s += fmt.Sprintf(`,"AdjacentParentShardId":%q`, parents[1])
	}
	if closed {
		return s + `,"SequenceNumberRange":{"StartingSequenceNumber":"1","EndingSequenceNumber":"2"}}`
	}
	return s + `,"SequenceNumberRange":{"StartingSequenceNumber":"1"}}`
}

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func call(t *testing.T, p *Proxy, op, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.URL(), strings.NewReader(body))
	req.Header.Set("X-Amz-Target", kinesisTargetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func listed(t *testing.T, p *Proxy, filter string) string {
	t.Helper()
	status, body := call(t, p, "ListShards", `{"StreamName":"st"`+filter+`}`)
	if status != http.StatusOK {
		t.Fatalf("ListShards %s: HTTP %d %s", filter, status, body)
	}
	var out struct{ Shards []struct{ ShardId string } }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range out.Shards {
		got = append(got, s.ShardId)
	}
	return strings.Join(got, ",")
}

func TestLifecycleRecordsTimes(t *testing.T) {
	t0 := time.Unix(1.7e9, 0)
	up := &fakeUpstream{created: t0.Add(-10 * time.Minute)}
	srv := httptest.NewServer(up)
	defer srv.Close()
	clock := &stepClock{t: t0}
	p, err := Start(Config{KinesisURL: srv.URL, ShardLifecycle: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	hours := func(h float64) string {
		return fmt.Sprintf("%.3f", float64(t0.Unix())+h*3600)
	}

	up.set(fakeShard("s0", false))
	if got := listed(t, p, ""); got != "s0" {
		t.Fatalf("listed %s", got)
	}
	clock.Set(t0.Add(time.Hour))
	if status, _ := call(t, p, "SplitShard", `{"StreamName":"st","ShardToSplit":"s0","NewStartingHashKey":"1"}`); status != http.StatusOK {
		t.Fatal(status)
	}
	// The upstream finishes the split later; the proxy first sees it at 2h.
	up.set(fakeShard("s0", true), fakeShard("s1", false, "s0"), fakeShard("s2", false, "s0"))
	clock.Set(t0.Add(2 * time.Hour))
	for filter, want := range map[string]string{
		`,"ShardFilter":{"Type":"AT_TRIM_HORIZON"}`:                               "s0",
		`,"ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":` + hours(-0.1) + `}`:  "s0", // after the upstream's creation time
		`,"ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":` + hours(0.5) + `}`:   "s0",
		`,"ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":` + hours(1.5) + `}`:   "s1,s2",
		`,"ShardFilter":{"Type":"FROM_TIMESTAMP","Timestamp":` + hours(1.5) + `}`: "s1,s2",
		``: "s0,s1,s2",
	} {
		if got := listed(t, p, filter); got != want {
			t.Errorf("%s: listed %s, want %s", filter, got, want)
		}
	}
	if status, body := call(t, p, "GetShardIterator", `{"StreamName":"st","ShardId":"s0","ShardIteratorType":"TRIM_HORIZON"}`); status != http.StatusOK {
		t.Errorf("GetShardIterator s0 within retention: HTTP %d %s", status, body)
	}
	clock.Set(t0.Add(25 * time.Hour)) // s0 closed 24h ago
	status, body := call(t, p, "GetShardIterator", `{"StreamName":"st","ShardId":"s0","ShardIteratorType":"TRIM_HORIZON"}`)
	if status != http.StatusBadRequest || !strings.Contains(body, codeResourceNotFound) {
		t.Errorf("GetShardIterator s0 after retention: HTTP %d %s", status, body)
	}
	if got := listed(t, p, ""); got != "s1,s2" {
		t.Errorf("after retention: listed %s", got)
	}

	// The stream is deleted and created again upstream, unseen by the proxy.
	up.set(fakeShard("s0", false))
	if got := listed(t, p, `,"ShardFilter":{"Type":"AT_LATEST"}`); got != "s0" {
		t.Errorf("recreated stream: AT_LATEST lists %s", got)
	}
	if got := listed(t, p, ""); got != "s0" {
		t.Errorf("recreated stream: lists %s", got)
	}
}
