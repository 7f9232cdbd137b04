package kcl

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

func kinesisRecord(seq, pk string, data []byte) types.Record {
	return types.Record{SequenceNumber: aws.String(seq), PartitionKey: aws.String(pk), Data: data, ApproximateArrivalTimestamp: aws.Time(time.Unix(1700000000, 0))}
}

func describe(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s/%d %s %s agg=%v", r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data, r.Aggregated))
	}
	return out
}

func TestDeaggregator(t *testing.T) {
	var e aggregation.Encoder
	e.Add(aggregation.Record{PartitionKey: "u1", Data: []byte("a")})
	e.Add(aggregation.Record{PartitionKey: "u2", Data: []byte("b")})
	e.Add(aggregation.Record{PartitionKey: "u1", Data: []byte("c")})
	container := e.Encode()
	corrupt := slices.Clone(container)
	corrupt[len(corrupt)-1] ^= 0xff // bad MD5: a plain record
	magic := aggregation.Magic()

	recs := []types.Record{
		kinesisRecord("100", "p", []byte("plain")),
		kinesisRecord("200", "agg", container),
		kinesisRecord("300", "bad", corrupt),
		kinesisRecord("400", "short", magic[:]),
	}
	for _, tc := range []struct {
		name      string
		resumeSeq string
		resumeSub uint64
		want      []string
	}{
		{"from the start", "", 0, []string{"100/0 p plain agg=false", "200/0 u1 a agg=true", "200/1 u2 b agg=true", "200/2 u1 c agg=true",
			"300/0 bad " + string(corrupt) + " agg=false", "400/0 short " + string(magic[:]) + " agg=false"}},
		{"resume at a plain record", "100", 0, []string{"200/0 u1 a agg=true", "200/1 u2 b agg=true", "200/2 u1 c agg=true",
			"300/0 bad " + string(corrupt) + " agg=false", "400/0 short " + string(magic[:]) + " agg=false"}},
		{"resume inside the aggregate", "200", 1, []string{"200/2 u1 c agg=true",
			"300/0 bad " + string(corrupt) + " agg=false", "400/0 short " + string(magic[:]) + " agg=false"}},
		{"resume at the aggregate's end", "200", 2, []string{"300/0 bad " + string(corrupt) + " agg=false", "400/0 short " + string(magic[:]) + " agg=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &deaggregator{shardID: "s"}
			from := 0
			if tc.resumeSeq != "" {
				d.resumeSeq, _ = new(big.Int).SetString(tc.resumeSeq, 10)
				d.resumeSub = tc.resumeSub
				// AT_SEQUENCE_NUMBER starts at the checkpointed record.
				from = slices.IndexFunc(recs, func(r types.Record) bool { return *r.SequenceNumber == tc.resumeSeq })
			}
			got := describe(d.appendRecords(nil, recs[from:]))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestDeaggregatorCountsRecordsOutsideTheShard(t *testing.T) {
	// The shard holds the lower half of the hash key space; "u1" and "u2"
	// are placed by their MD5.
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	r, err := hashkey.ParseRange("0", new(big.Int).Sub(half, big.NewInt(1)).String())
	if err != nil {
		t.Fatal(err)
	}
	var e aggregation.Encoder
	keys := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	wantOutside := 0
	// Each key is used three times, interleaved, so that cached answers
	// for a key are read back as well as computed.
	for range 3 {
		for _, k := range keys {
			e.Add(aggregation.Record{PartitionKey: k, Data: []byte(k)})
			if !r.Contains(hashkey.FromPartitionKey(k)) {
				wantOutside++
			}
		}
	}
	e.Add(aggregation.Record{PartitionKey: "x", ExplicitHashKey: "1", Data: []byte("inside by explicit hash key")})
	if wantOutside == 0 || wantOutside == 3*len(keys) {
		t.Fatalf("test keys all on one side (%d outside)", wantOutside)
	}
	outside := 0
	d := &deaggregator{shardID: "s", hashRange: &r, outside: func(n int) { outside += n }}
	got := d.appendRecords(nil, []types.Record{kinesisRecord("1", "a", e.Encode())})
	if len(got) != 3*len(keys)+1 {
		t.Fatalf("delivered %d user records, want all %d", len(got), 3*len(keys)+1)
	}
	if outside != wantOutside {
		t.Fatalf("counted %d outside the shard, want %d", outside, wantOutside)
	}
	// A second container with the same keys is checked afresh: a range
	// that excludes everything counts every pk-routed record.
	none, err := hashkey.ParseRange("1", "1")
	if err != nil {
		t.Fatal(err)
	}
	d.hashRange, outside = &none, 0
	d.appendRecords(nil, []types.Record{kinesisRecord("2", "a", e.Encode())})
	if outside != 3*len(keys) {
		t.Fatalf("second container: counted %d outside, want %d", outside, 3*len(keys))
	}
	// A shard holding the whole space (checked without hashing) has
	// every record inside.
	full, err := hashkey.ParseRange("0", hashkey.Max.String())
	if err != nil {
		t.Fatal(err)
	}
	d.hashRange, outside = &full, 0
	if got := d.appendRecords(nil, []types.Record{kinesisRecord("3", "a", e.Encode())}); len(got) != 3*len(keys)+1 || outside != 0 {
		t.Fatalf("whole space: delivered %d, counted %d outside, want %d and 0", len(got), outside, 3*len(keys)+1)
	}
}

// TestDeaggregatorPairs reads runs of containers, which are decoded several
// at a time, mixed with plain, corrupt and compressed records, from every
// resume point: each Kinesis record gives what decoding it alone gives.
func TestDeaggregatorRuns(t *testing.T) {
	var e aggregation.Encoder
	build := func(tag string, n int) []byte {
		e.Reset()
		for i := range n {
			e.Add(aggregation.Record{PartitionKey: fmt.Sprint(tag, i%3), Data: []byte(fmt.Sprint(tag, "-", i))})
		}
		return e.Encode()
	}
	corrupt := build("x", 4)
	corrupt[len(corrupt)-1] ^= 0xff
	compressed, err := aggregation.Compress(nil, build("z", 5), aggregation.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	datas := [][]byte{build("a", 3), build("b", 1), build("c", 7), []byte("plain"), build("d", 2), corrupt,
		build("e", 4), compressed, build("f", 2), build("g", 3), build("h", 1)}
	// A run longer than eight, with a corrupt container inside it.
	for i := range 11 {
		datas = append(datas, build(fmt.Sprint("r", i), 1+i%4))
		if i == 5 {
			datas = append(datas, corrupt)
		}
	}
	var recs []types.Record
	var want []string // per Kinesis record, its user records decoded alone
	var wantSubs [][]string
	for i, data := range datas {
		seq := fmt.Sprint(100 * (i + 1))
		recs = append(recs, kinesisRecord(seq, "pk", data))
		var subs []string
		if users, ok := aggregation.Decode(data); ok {
			for _, u := range users {
				subs = append(subs, fmt.Sprintf("%s/%d %s %s agg=true", seq, u.SubSequenceNumber, u.PartitionKey, u.Data))
			}
		} else {
			subs = append(subs, fmt.Sprintf("%s/0 pk %s agg=false", seq, data))
		}
		wantSubs = append(wantSubs, subs)
		want = append(want, subs...)
	}
	d := &deaggregator{shardID: "s"}
	if got := describe(d.appendRecords(nil, recs)); !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	// Resuming at each user record skips it and everything before it.
	for i := range recs {
		for sub := range wantSubs[i] {
			d := &deaggregator{shardID: "s", resumeSub: uint64(sub)}
			d.resumeSeq, _ = new(big.Int).SetString(*recs[i].SequenceNumber, 10)
			want := slices.Concat(append([][]string{wantSubs[i][sub+1:]}, wantSubs[i+1:]...)...)
			if got := describe(d.appendRecords(nil, recs[i:])); !slices.Equal(got, want) {
				t.Fatalf("resume at %s/%d: got  %q\nwant %q", *recs[i].SequenceNumber, sub, got, want)
			}
		}
	}
}

// TestDeaggregatorRangeChecksManyKeys checks the count of user records
// outside the shard against each record's own hash key, for containers
// with more distinct keys than the cache holds, keys repeated near and far
// apart, and explicit hash keys among them, several containers in a row.
func TestDeaggregatorRangeChecksManyKeys(t *testing.T) {
	r, err := hashkey.ParseRange("0", new(big.Int).Lsh(big.NewInt(1), 126).String()) // a quarter
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	var recs []types.Record
	wantOutside, total := 0, 0
	for c := range 5 {
		var e aggregation.Encoder
		for i := range 700 {
			k := fmt.Sprintf("key-%d", rnd.IntN(600+c*100))
			rec := aggregation.Record{PartitionKey: k, Data: []byte{byte(i)}}
			h := hashkey.FromPartitionKey(k)
			if i%50 == 0 {
				rec.ExplicitHashKey = fmt.Sprint(i * 1000)
				h, _ = hashkey.Parse(rec.ExplicitHashKey)
			}
			e.Add(rec)
			if !r.Contains(h) {
				wantOutside++
			}
			total++
		}
		recs = append(recs, kinesisRecord(fmt.Sprint(c+1), "a", e.Encode()))
	}
	outside := 0
	d := &deaggregator{shardID: "s", hashRange: &r, outside: func(n int) { outside += n }}
	if got := d.appendRecords(nil, recs); len(got) != total {
		t.Fatalf("delivered %d user records, want %d", len(got), total)
	}
	if outside != wantOutside {
		t.Fatalf("counted %d outside the shard, want %d", outside, wantOutside)
	}
}
