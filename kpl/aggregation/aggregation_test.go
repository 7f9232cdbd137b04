package aggregation

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// golden is a container built by hand from the format: partition key table
// ["a", "b"], explicit hash key table ["123"], and three records.
const golden = "f3899ac2" + // prefix
	"0a0161" + // partition_key_table: "a"
	"0a0162" + // partition_key_table: "b"
	"1203313233" + // explicit_hash_key_table: "123"
	"1a09" + "0800" + "1a0568656c6c6f" + // record {pk 0, data "hello"}
	"1a06" + "0801" + "1000" + "1a00" + // record {pk 1, ehk 0, data ""}
	"1a05" + "0800" + "1a0178" + // record {pk 0, data "x"}
	"df78f10846078971281ee697b6bb1e21" // MD5 of the protobuf bytes

func goldenRecords() []Record {
	return []Record{
		{PartitionKey: "a", Data: []byte("hello")},
		{PartitionKey: "b", ExplicitHashKey: "123", Data: []byte{}},
		{PartitionKey: "a", Data: []byte("x")},
	}
}

func TestEncodeGolden(t *testing.T) {
	var e Encoder
	for _, r := range goldenRecords() {
		e.Add(r)
	}
	got := e.Encode()
	if hex.EncodeToString(got) != golden {
		t.Fatalf("container\n got %x\nwant %s", got, golden)
	}
	if e.Size() != len(got) || e.Len() != 3 {
		t.Fatalf("Size() = %d, Len() = %d; want %d, 3", e.Size(), e.Len(), len(got))
	}
	// The digest really is the MD5 of the protobuf bytes.
	sum := md5.Sum(got[4 : len(got)-16])
	if !bytes.Equal(sum[:], got[len(got)-16:]) {
		t.Fatal("digest is not the MD5 of the message")
	}
}

func TestDecodeGolden(t *testing.T) {
	data, _ := hex.DecodeString(golden)
	recs, ok := Decode(data)
	if !ok {
		t.Fatal("golden container not recognised")
	}
	want := []UserRecord{
		{PartitionKey: "a", Data: []byte("hello"), SubSequenceNumber: 0},
		{PartitionKey: "b", ExplicitHashKey: "123", Data: []byte{}, SubSequenceNumber: 1},
		{PartitionKey: "a", Data: []byte("x"), SubSequenceNumber: 2},
	}
	assertRecords(t, recs, want)
}

func TestDecodeTablesAfterRecordsAndUnknownFields(t *testing.T) {
	// Protobuf allows fields in any order; tags (field 4) and unknown fields
	// are skipped.
	var msg []byte
	msg = append(msg, 0x1a, 0x0b, 0x08, 0x00, 0x1a, 0x01, 'z', 0x22, 0x04, 0x0a, 0x02, 'k', '1') // record with a tag
	msg = append(msg, 0x28, 0x96, 0x01)                                                          // unknown varint field 5
	msg = append(msg, 0x35, 1, 2, 3, 4)                                                          // unknown fixed32 field 6
	msg = append(msg, 0x0a, 0x02, 'p', 'k')                                                      // partition key table after the record
	data := container(msg)
	recs, ok := Decode(data)
	if !ok {
		t.Fatal("not recognised")
	}
	assertRecords(t, recs, []UserRecord{{PartitionKey: "pk", Data: []byte("z")}})
}

func TestDecodePlainRecords(t *testing.T) {
	valid, _ := hex.DecodeString(golden)
	badDigest := bytes.Clone(valid)
	badDigest[len(badDigest)-1] ^= 1
	cases := map[string][]byte{
		"nil":                 nil,
		"empty":               {},
		"text":                []byte("hello world"),
		"prefix only":         magic[:],
		"prefix and digest":   container(nil),
		"bad digest":          badDigest,
		"truncated":           valid[:len(valid)-1],
		"no records":          container([]byte{0x0a, 0x01, 'a'}),
		"pk index too large":  container([]byte{0x0a, 0x01, 'a', 0x1a, 0x04, 0x08, 0x01, 0x1a, 0x00}),
		"ehk index, no table": container([]byte{0x0a, 0x01, 'a', 0x1a, 0x06, 0x08, 0x00, 0x10, 0x00, 0x1a, 0x00}),
		"record without pk":   container([]byte{0x0a, 0x01, 'a', 0x1a, 0x02, 0x1a, 0x00}),
		"record without data": container([]byte{0x0a, 0x01, 'a', 0x1a, 0x02, 0x08, 0x00}),
		"length past end":     container([]byte{0x0a, 0x05, 'a'}),
		"group wire type":     container([]byte{0x0b, 0x0c}),
		"field number zero":   container([]byte{0x02, 0x00}),
		"overlong varint":     container([]byte{0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}),
		"compressed garbage":  append(compressedMagic[:], 1, 2, 3, 4),
		"compressed unknown":  append(compressedMagic[:], 9),
		"compressed nothing":  compressedMagic[:],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			orig := bytes.Clone(data)
			dst := []UserRecord{{PartitionKey: "keep"}}
			recs, ok := DecodeAppend(dst, data)
			if ok {
				t.Fatalf("Decode accepted %x as a container: %+v", data, recs)
			}
			if len(recs) != 1 || recs[0].PartitionKey != "keep" {
				t.Fatalf("dst changed: %+v", recs)
			}
			if !bytes.Equal(orig, data) {
				t.Fatal("input modified")
			}
		})
	}
}

func container(msg []byte) []byte {
	sum := md5.Sum(msg)
	out := append(magic[:], msg...)
	return append(out, sum[:]...)
}

func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for iter := 0; iter < 300; iter++ {
		var e Encoder
		n := 1 + r.IntN(600)
		keys := randomKeys(r, 1+r.IntN(200))
		var want []UserRecord
		for i := 0; i < n; i++ {
			rec := Record{PartitionKey: keys[r.IntN(len(keys))], Data: randomBytes(r)}
			if r.IntN(3) == 0 {
				rec.ExplicitHashKey = fmt.Sprint(r.Uint64()) + fmt.Sprint(r.Uint32())
			}
			before := e.SizeWith(rec)
			e.Add(rec)
			if e.Size() != before {
				t.Fatalf("SizeWith = %d, Size after Add = %d", before, e.Size())
			}
			want = append(want, UserRecord{PartitionKey: rec.PartitionKey, ExplicitHashKey: rec.ExplicitHashKey, Data: rec.Data, SubSequenceNumber: uint64(i)})
		}
		prefix := []byte("xyz")
		out := e.AppendTo(prefix)
		if !bytes.Equal(out[:3], prefix) {
			t.Fatal("AppendTo overwrote dst")
		}
		data := out[3:]
		if len(data) != e.Size() {
			t.Fatalf("encoded %d bytes, Size() = %d", len(data), e.Size())
		}
		got, ok := Decode(data)
		if !ok {
			t.Fatalf("iteration %d: container not recognised", iter)
		}
		assertRecords(t, got, want)
		assertTablesDeduplicated(t, &e)

		// Reset empties the encoder for reuse.
		e.Reset()
		if e.Len() != 0 || e.Size() != Overhead {
			t.Fatalf("after Reset: Len %d Size %d", e.Len(), e.Size())
		}
	}
}

func TestRoundTripEdgeCases(t *testing.T) {
	long := strings.Repeat("ключ", 64) // 256 characters, 512 bytes
	recs := []Record{
		{PartitionKey: long, Data: nil},
		{PartitionKey: long, Data: []byte{}},
		{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211455", Data: bytes.Repeat([]byte{0xff}, 70000)},
		{PartitionKey: "k", ExplicitHashKey: "0", Data: []byte{0}},
		{PartitionKey: "", Data: []byte("empty key")},
	}
	var e Encoder
	for _, r := range recs {
		e.Add(r)
	}
	data := e.Encode()
	if len(data) != e.Size() {
		t.Fatalf("len %d, Size %d", len(data), e.Size())
	}
	got, ok := Decode(data)
	if !ok {
		t.Fatal("not recognised")
	}
	want := []UserRecord{
		{PartitionKey: long, Data: []byte{}},
		{PartitionKey: long, Data: []byte{}, SubSequenceNumber: 1},
		{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211455", Data: recs[2].Data, SubSequenceNumber: 2},
		{PartitionKey: "k", ExplicitHashKey: "0", Data: []byte{0}, SubSequenceNumber: 3},
		{PartitionKey: "", Data: []byte("empty key"), SubSequenceNumber: 4},
	}
	assertRecords(t, got, want)
}

func TestCompressionRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var e Encoder
	var want []UserRecord
	for i := 0; i < 400; i++ {
		rec := Record{PartitionKey: fmt.Sprintf("user-%d", r.IntN(50)), Data: []byte(strings.Repeat("payload ", 12))}
		e.Add(rec)
		want = append(want, UserRecord{PartitionKey: rec.PartitionKey, Data: rec.Data, SubSequenceNumber: uint64(i)})
	}
	plain := e.Encode()
	for _, c := range []Compression{None, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			data, err := Compress([]byte("pre"), plain, c)
			if err != nil {
				t.Fatal(err)
			}
			if string(data[:3]) != "pre" {
				t.Fatal("dst prefix lost")
			}
			data = data[3:]
			if c != None {
				if bytes.HasPrefix(data, magic[:]) || !IsContainer(data) {
					t.Fatalf("compressed container has prefix %x", data[:5])
				}
				if len(data) >= len(plain) {
					t.Errorf("%v: %d bytes compressed from %d", c, len(data), len(plain))
				}
			}
			got, ok := Decode(data)
			if !ok {
				t.Fatal("not recognised")
			}
			assertRecords(t, got, want)
			c2, err := ParseCompression(c.String())
			if err != nil || c2 != c {
				t.Fatalf("ParseCompression(%q) = %v, %v", c, c2, err)
			}
		})
	}
	if _, err := ParseCompression("lz4"); err == nil {
		t.Fatal("ParseCompression accepted lz4")
	}
	if _, err := Compress(nil, plain, Compression(9)); err == nil {
		t.Fatal("Compress accepted an unknown algorithm")
	}
}

func TestCompressedNotAContainerIsPlain(t *testing.T) {
	// Compressed bytes that are not a valid container inside, and nested
	// compression, are plain records.
	for _, c := range []Compression{Gzip, Zstd} {
		data, err := Compress(nil, []byte("just some text"), c)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := Decode(data); ok {
			t.Errorf("%v of plain text accepted", c)
		}
		var e Encoder
		e.Add(Record{PartitionKey: "a", Data: []byte("b")})
		inner, _ := Compress(nil, e.Encode(), c)
		nested, _ := Compress(nil, inner, c)
		if _, ok := Decode(nested); ok {
			t.Errorf("nested %v accepted", c)
		}
	}
}

func TestDecompressionBounded(t *testing.T) {
	big := make([]byte, MaxDecompressedSize+1)
	for _, c := range []Compression{Gzip, Zstd} {
		data, err := Compress(nil, big, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := Decode(data); ok {
			t.Errorf("%v: oversized container accepted", c)
		}
	}
}

// TestDecompressionRatioBounded: a valid container of 1 MiB of zeros
// compresses to about a thousandth of it, beyond MaxExpansionRatio: it is
// treated as a plain record; a container of varied data is decoded.
func TestDecompressionRatioBounded(t *testing.T) {
	var bomb, varied Encoder
	bomb.Add(Record{PartitionKey: "k", Data: make([]byte, 1<<20)})
	for i := range 100 {
		varied.Add(Record{PartitionKey: fmt.Sprintf("key-%d", i), Data: fmt.Appendf(nil, "GET /item/%d?session=%x 200 %d", i, i*7919, i*31)})
	}
	for _, c := range []Compression{Gzip, Zstd} {
		data, err := Compress(nil, bomb.Encode(), c)
		if err != nil {
			t.Fatal(err)
		}
		if !IsCompressed(data) || len(data)*MaxExpansionRatio >= 1<<20 {
			t.Fatalf("%v: the bomb is %d bytes: not a bomb", c, len(data))
		}
		if _, ok := Decode(data); ok {
			t.Errorf("%v: container expanding %d times accepted", c, (1<<20)/len(data))
		}
		data, err = Compress(nil, varied.Encode(), c)
		if err != nil {
			t.Fatal(err)
		}
		if rs, ok := Decode(data); !ok || len(rs) != 100 {
			t.Errorf("%v: varied container: %d records, ok %v; want 100", c, len(rs), ok)
		}
	}
}

func assertRecords(t *testing.T, got, want []UserRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey ||
			g.SubSequenceNumber != w.SubSequenceNumber || !bytes.Equal(g.Data, w.Data) || g.Data == nil {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func assertTablesDeduplicated(t *testing.T, e *Encoder) {
	t.Helper()
	// Decode the tables as they are on the wire.
	seen := map[string]bool{}
	for p := e.keys; len(p) > 0; {
		_, v, rest, ok := nextField(p)
		if !ok {
			t.Fatal("malformed partition key table")
		}
		p = rest
		if seen[string(v)] {
			t.Fatalf("partition key %q twice in the table", v)
		}
		seen[string(v)] = true
	}
	if len(seen) != len(e.pkOff) {
		t.Fatalf("%d partition keys in the table, %d indexed", len(seen), len(e.pkOff))
	}
	clear(seen)
	for p := e.ehkTab; len(p) > 0; {
		_, v, rest, ok := nextField(p)
		if !ok {
			t.Fatal("malformed explicit hash key table")
		}
		p = rest
		if seen[string(v)] {
			t.Fatalf("explicit hash key %q twice in the table", v)
		}
		seen[string(v)] = true
	}
}

func randomKeys(r *rand.Rand, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		b := make([]rune, 1+r.IntN(256))
		for j := range b {
			if r.IntN(10) == 0 {
				b[j] = rune(0x400 + r.IntN(0x100)) // multi-byte UTF-8
			} else {
				b[j] = rune('a' + r.IntN(26))
			}
		}
		keys[i] = string(b)
	}
	return keys
}

func randomBytes(r *rand.Rand) []byte {
	var n int
	switch r.IntN(4) {
	case 0:
		n = 0
	case 1:
		n = r.IntN(128)
	case 2:
		n = 100
	default:
		n = r.IntN(2000)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func FuzzDecode(f *testing.F) {
	g, _ := hex.DecodeString(golden)
	f.Add(g)
	f.Add([]byte{})
	f.Add([]byte("plain"))
	f.Add(container([]byte{0x1a, 0x0b, 0x08, 0x00, 0x1a, 0x01, 'z', 0x22, 0x04, 0x0a, 0x02, 'k', '1', 0x0a, 0x02, 'p', 'k'}))
	if z, err := Compress(nil, g, Zstd); err == nil {
		f.Add(z)
	}
	if z, err := Compress(nil, g, Gzip); err == nil {
		f.Add(z)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		recs, ok := Decode(data)
		if !bytes.Equal(orig, data) {
			t.Fatal("input modified")
		}
		if !ok {
			if recs != nil {
				t.Fatal("records returned with ok=false")
			}
			return
		}
		if len(recs) == 0 {
			t.Fatal("ok with no records")
		}
		// A valid container re-encodes to one that decodes the same.
		var e Encoder
		for _, r := range recs {
			e.Add(Record{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data})
		}
		again, ok := Decode(e.Encode())
		if !ok {
			t.Fatal("re-encoded container not recognised")
		}
		assertRecords(t, again, recs)
	})
}

func TestTryAdd(t *testing.T) {
	var e Encoder
	r := Record{PartitionKey: "k", Data: make([]byte, 100)}
	limit := Overhead + 3*(fieldSize(1)) // room for the key alone, not a record
	if e.TryAdd(r, limit) || e.Len() != 0 || e.Size() != Overhead {
		t.Fatal("TryAdd added a record over the cap")
	}
	for e.TryAdd(r, 1000) {
	}
	if e.Size() > 1000 || e.SizeWith(r) <= 1000 || e.Len() == 0 {
		t.Fatalf("Size %d, SizeWith %d, Len %d", e.Size(), e.SizeWith(r), e.Len())
	}
	if got := len(e.Encode()); got != e.Size() {
		t.Fatalf("encoded %d, Size %d", got, e.Size())
	}
}

// TestAppendBase64 checks that AppendBase64 appends the base64 of exactly
// what Encode returns, for containers small and larger than its buffer,
// with explicit hash keys and records of every size around its buffer's.
func TestAppendBase64(t *testing.T) {
	for _, sizes := range [][]int{{0}, {1}, {5, 7}, {12287, 1, 12288, 12289}, {100000, 3, 50000}} {
		var e Encoder
		for i, n := range sizes {
			d := make([]byte, n)
			for j := range d {
				d[j] = byte(i*31 + j)
			}
			r := Record{PartitionKey: fmt.Sprintf("key-%d", i%2), Data: d}
			if i%2 == 1 {
				r.ExplicitHashKey = "12345"
			}
			e.Add(r)
		}
		want := base64.StdEncoding.EncodeToString(e.Encode())
		got := e.AppendBase64([]byte("prefix"))
		if string(got) != "prefix"+want {
			t.Errorf("sizes %v: AppendBase64 differs from the base64 of Encode (%d vs %d bytes)", sizes, len(got)-6, len(want))
		}
		if e.Base64Size() != len(want) {
			t.Errorf("sizes %v: Base64Size %d, want %d", sizes, e.Base64Size(), len(want))
		}
	}
}

// TestRecordsAndCopies checks that the Encoder copies each record at Add
// (the caller's buffer may change afterwards), and that Records gives back
// every record in order with its keys, across enough distinct partition
// keys to grow the key table several times.
func TestRecordsAndCopies(t *testing.T) {
	var e Encoder
	buf := make([]byte, 8)
	var want []Record
	for i := range 1000 {
		copy(buf, fmt.Sprintf("%08d", i))
		r := Record{PartitionKey: fmt.Sprintf("key-%d", i%700), Data: buf}
		if i%3 == 0 {
			r.ExplicitHashKey = fmt.Sprint(i % 5)
		}
		e.Add(r)
		r.Data = bytes.Clone(buf)
		want = append(want, r)
	}
	copy(buf, "changed!")
	i := 0
	for r := range e.Records() {
		w := want[i]
		if r.PartitionKey != w.PartitionKey || r.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(r.Data, w.Data) {
			t.Fatalf("record %d: got %+v, want %+v", i, r, w)
		}
		i++
	}
	if i != len(want) || e.Len() != len(want) {
		t.Fatalf("Records gave %d records, Len %d, want %d", i, e.Len(), len(want))
	}
	got, ok := Decode(e.Encode())
	if !ok || len(got) != len(want) {
		t.Fatalf("Decode: ok %v, %d records", ok, len(got))
	}
	for i, g := range got {
		if g.PartitionKey != want[i].PartitionKey || g.ExplicitHashKey != want[i].ExplicitHashKey || !bytes.Equal(g.Data, want[i].Data) {
			t.Fatalf("decoded record %d: got %+v, want %+v", i, g, want[i])
		}
	}
	assertTablesDeduplicated(t, &e)
	e.Reset()
	e.Add(Record{PartitionKey: "key-1", Data: []byte("x")})
	if got, _ := Decode(e.Encode()); len(got) != 1 || got[0].PartitionKey != "key-1" || string(got[0].Data) != "x" {
		t.Fatalf("after Reset: %+v", got)
	}
}

// sameAsFields checks that decodeMessage, which takes the encoders' layout
// fast and any other layout field by field, reads msg exactly as the
// field-by-field reader alone does.
func sameAsFields(t *testing.T, msg []byte) {
	t.Helper()
	got, gotOK := decodeMessage(nil, msg)
	sc := new(scratch)
	want, wantOK := decodeFields(nil, msg, sc)
	if gotOK != wantOK {
		t.Fatalf("decodeMessage ok = %v, decodeFields ok = %v, message %x", gotOK, wantOK, msg)
	}
	if gotOK {
		assertRecords(t, got, want)
	}
}

func TestDecodeLayoutMatchesFields(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for iter := 0; iter < 200; iter++ {
		var e Encoder
		keys := randomKeys(r, 1+r.IntN(300))
		for range 1 + r.IntN(400) {
			rec := Record{PartitionKey: keys[r.IntN(len(keys))], Data: randomBytes(r)}
			if r.IntN(4) == 0 {
				rec.ExplicitHashKey = fmt.Sprint(r.Uint64())
			}
			e.Add(rec)
		}
		c := e.Encode()
		msg := c[len(magic) : len(c)-md5.Size]
		sameAsFields(t, msg)
		// Damaged messages: a byte changed, or the message cut short.
		for range 20 {
			m := bytes.Clone(msg)
			m[r.IntN(len(m))] ^= byte(1 + r.IntN(255))
			sameAsFields(t, m)
			sameAsFields(t, msg[:r.IntN(len(msg))])
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	g, _ := hex.DecodeString(golden)
	f.Add(g[len(magic) : len(g)-md5.Size])
	var e Encoder
	for i := range 300 {
		e.Add(Record{PartitionKey: fmt.Sprint("k", i), Data: make([]byte, i)})
	}
	c := e.Encode()
	f.Add(c[len(magic) : len(c)-md5.Size])
	f.Fuzz(sameAsFields)
}

func TestDecodeAppendMany(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 4))
	var e Encoder
	build := func(n int) []byte {
		e.Reset()
		for i := range n {
			e.Add(Record{PartitionKey: fmt.Sprint("k", i%7), Data: randomBytes(r)})
		}
		return e.Encode()
	}
	valid, small := build(300), build(2)
	badDigest := bytes.Clone(valid)
	badDigest[len(badDigest)-1] ^= 1
	badMessage := container([]byte{0x1a, 0x03, 0x08, 0x05, 0x1a}) // index outside the key table
	compressed, err := Compress(nil, valid, Zstd)
	if err != nil {
		t.Fatal(err)
	}
	inputs := [][]byte{valid, small, badDigest, badMessage, []byte("plain"), nil, compressed, build(50), build(300)}
	prefix := []UserRecord{{PartitionKey: "before", Data: []byte{}}}
	for iter := range 200 {
		datas := make([][]byte, r.IntN(20))
		for i := range datas {
			datas[i] = inputs[r.IntN(len(inputs))]
		}
		want := slices.Clone(prefix)
		wantCounts := make([]int, len(datas))
		for i, d := range datas {
			recs, ok := DecodeAppend(nil, d)
			wantCounts[i] = -1
			if ok {
				wantCounts[i] = len(recs)
				want = append(want, recs...)
			}
		}
		counts := make([]int, len(datas))
		got := DecodeAppendMany(slices.Clone(prefix), datas, counts)
		if !slices.Equal(counts, wantCounts) {
			t.Fatalf("iteration %d: counts %v, want %v", iter, counts, wantCounts)
		}
		assertRecords(t, got, want)
	}
}

// TestSumMany checks SumMany's digests against Encode's for groups of
// every size up to past eight, with containers small, large enough to end
// a group early (the 1 MiB of copies) and larger than that alone, and that
// AppendBase64Sum with them writes what AppendBase64 does.
func TestSumMany(t *testing.T) {
	sizes := []int{0, 10, 300, 50_000, 49_000, 7, 600_000, 1, 2, 3, 4, 5, 6, 700_000, 1_200_000, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	es := make([]*Encoder, len(sizes))
	for i, n := range sizes {
		es[i] = new(Encoder)
		if n == 0 {
			continue // no record at all
		}
		d := make([]byte, n)
		for j := range d {
			d[j] = byte(i + j*7)
		}
		es[i].Add(Record{PartitionKey: fmt.Sprintf("key-%d", i), ExplicitHashKey: "99", Data: d})
	}
	want := make([][]byte, len(es))
	for i, e := range es {
		c := e.Encode()
		want[i] = c[len(c)-md5.Size:]
	}
	var scratch []byte
	for from := range es {
		for to := from; to <= len(es); to++ {
			sums := make([][md5.Size]byte, to-from)
			scratch = SumMany(es[from:to], sums, scratch)
			for i := range sums {
				if !bytes.Equal(sums[i][:], want[from+i]) {
					t.Fatalf("containers %d..%d: digest of %d (%d B) is %x, want %x", from, to, from+i, es[from+i].Size(), sums[i], want[from+i])
				}
			}
		}
	}
	if cap(scratch) > 1<<20 {
		t.Errorf("scratch grew to %d bytes, past 1 MiB", cap(scratch))
	}
	sums := make([][md5.Size]byte, len(es))
	SumMany(es, sums, make([]byte, 10))
	for i, e := range es {
		if got, want := e.AppendBase64Sum([]byte("p"), sums[i]), e.AppendBase64([]byte("p")); !bytes.Equal(got, want) {
			t.Errorf("container %d: AppendBase64Sum differs from AppendBase64", i)
		}
	}
}
