package checkpoint

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		seq string
		sub uint64
	}{
		{"0", 0}, {"1", 5}, {"49590338271490256608559692538361571095921575989136588801", 0},
		{"340282366920938463463374607431768211456", 2}, // 2^128: sequence numbers have up to 129 digits
		{"TRIM_HORIZON", 0}, {"LATEST", 0}, {"AT_TIMESTAMP", 0}, {"SHARD_END", 0},
	}
	for _, g := range good {
		if _, err := Parse(g.seq, g.sub); err != nil {
			t.Errorf("Parse(%q, %d): %v", g.seq, g.sub, err)
		}
	}
	bad := []struct {
		seq string
		sub uint64
	}{
		{"", 0}, {"abc", 0}, {"-1", 0}, {"+1", 0}, {"1.5", 0}, {"SHARD_END", 1},
		{"1" + strings.Repeat("0", 129), 0}, // 130 digits
	}
	for _, b := range bad {
		if _, err := Parse(b.seq, b.sub); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q, %d): %v, want ErrInvalid", b.seq, b.sub, err)
		}
	}
}

func TestCompare(t *testing.T) {
	// In increasing order.
	order := []SequenceNumber{
		AtTimestamp.SequenceNumber(), TrimHorizon.SequenceNumber(), Latest.SequenceNumber(),
		{"9", 0}, {"9", 1}, {"10", 0}, // as integers, not strings
		{"49590338271490256608559692538361571095921575989136588801", 0},
		{"49590338271490256608559692538361571095921575989136588801", 7},
		{"49590338271490256608559692538361571095921575989136588802", 0},
		ShardEnd.SequenceNumber(),
	}
	for i, a := range order {
		for j, b := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, want)
			}
		}
	}
	if s := (SequenceNumber{"12", 3}).String(); s != "12/3" {
		t.Errorf("String = %q", s)
	}
	if ShardEnd.String() != "SHARD_END" || !ShardEnd.SequenceNumber().IsPosition() || (SequenceNumber{"1", 0}).IsPosition() {
		t.Error("position String or IsPosition wrong")
	}
	if p, ok := (SequenceNumber{Sequence: "LATEST"}).Position(); !ok || p != Latest {
		t.Errorf("Position of LATEST = %v, %v", p, ok)
	}
	for _, p := range []Position{TrimHorizon, Latest, AtTimestamp} {
		if !p.IsStart() || !p.Valid() {
			t.Errorf("%s: IsStart %v Valid %v", p, p.IsStart(), p.Valid())
		}
	}
	if ShardEnd.IsStart() || !ShardEnd.Valid() || Position("AT_SEQUENCE_NUMBER").Valid() {
		t.Error("ShardEnd is no start position; AT_SEQUENCE_NUMBER is no position")
	}
}
