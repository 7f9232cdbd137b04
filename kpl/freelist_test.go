package kpl

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// TestDataIntactWhenMemoryIsReused puts enough data that the chunks records
// are copied into are recycled many times, and checks every record's bytes.
func TestDataIntactWhenMemoryIsReused(t *testing.T) {
	f := newStream(t, 3)
	p := newProducer(t, f, Config{RecordMaxBufferedTime: time.Millisecond})
	const rounds, per = 6, 5000
	payload := func(i int) []byte {
		b := make([]byte, 100)
		copy(b, fmt.Sprintf("rec-%06d", i))
		for j := 10; j < len(b); j++ {
			b[j] = byte(i*31 + j)
		}
		return b
	}
	buf := make([]byte, 100) // reused by the caller between Puts
	for round := 0; round < rounds; round++ {
		for i := round * per; i < (round+1)*per; i++ {
			copy(buf, payload(i))
			if err := p.Put(context.Background(), Record{PartitionKey: randomKey(i), Data: buf}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got := f.UserRecords()
	if len(got) != rounds*per {
		t.Fatalf("%d records, want %d", len(got), rounds*per)
	}
	seen := map[int]bool{}
	for _, u := range got {
		var i int
		if _, err := fmt.Sscanf(string(u.Data[:10]), "rec-%06d", &i); err != nil || seen[i] {
			t.Fatalf("bad or repeated record %q", u.Data[:10])
		}
		seen[i] = true
		if !bytes.Equal(u.Data, payload(i)) {
			t.Fatalf("record %d corrupted", i)
		}
	}
}
