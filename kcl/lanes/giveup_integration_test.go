package lanes_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl/lanes"
)

// readEnvelopes reads a JSON-lines destination file; every line must be a
// whole envelope.
func readEnvelopes(t *testing.T, path string) []lanes.Envelope {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []lanes.Envelope
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var e lanes.Envelope
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %d: %v: %q", path, len(out)+1, err, sc.Bytes())
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func openFile(t *testing.T) (*lanes.FileDestination, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	d, err := lanes.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, path
}

// TestIntegrationBisectFindsPoisonRecord: a batch of 1,000 records with one
// that always fails is bisected until that record is alone: it takes at
// most ⌈log2 1000⌉+1 retries, exactly that record reaches the destination
// file, and every other record is handled once.
func TestIntegrationBisectFindsPoisonRecord(t *testing.T) {
	e := newEnv(t, 1)
	total := e.put(10, 100, nil)
	const poison = "key-005#37"
	dest, path := openFile(t)

	var mu sync.Mutex
	handled := map[string]int{}
	var poisonCalls, firstBatch int
	f, err := lanes.New(lanes.Config{
		BatchSize: 1000, BatchWindow: 5 * time.Second, // one batch of all the records
		Bisect: true, MaxRetries: lanes.NoRetries, Destination: dest,
		RetryBackoffBase: time.Millisecond, RetryBackoffMax: time.Millisecond,
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if firstBatch == 0 {
				firstBatch = len(b.Records)
			}
			for _, r := range b.Records {
				if string(r.Data) == poison {
					poisonCalls++
					return errors.New("poison record")
				}
			}
			for _, r := range b.Records {
				handled[string(r.Data)]++
			}
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.run(e.config("w", f))
	wait.For(t, 60*time.Second, "every record handled or given up on", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == total-1 && len(readEnvelopes(t, path)) > 0
	})

	mu.Lock()
	defer mu.Unlock()
	if firstBatch != total {
		t.Fatalf("the first batch had %d records, want all %d", firstBatch, total)
	}
	retries := poisonCalls - 1
	limit := int(math.Ceil(math.Log2(float64(total)))) + 1
	t.Logf("the poison record was isolated after %d retries (at most %d)", retries, limit)
	if retries > limit {
		t.Errorf("%d retries of the poison record, want at most %d", retries, limit)
	}
	for d, n := range handled {
		if n != 1 {
			t.Errorf("record %s handled %d times, want once", d, n)
		}
	}
	envs := readEnvelopes(t, path)
	if len(envs) != 1 || string(envs[0].Record.Data) != poison {
		t.Fatalf("destination got %d records (%v), want only %s", len(envs), envs, poison)
	}
	if env := envs[0]; env.Reason != lanes.RetriesExhausted || env.Attempts != poisonCalls || !strings.Contains(env.LastError, "poison") {
		t.Errorf("envelope %+v: want reason %s, %d attempts and the handler's error", env, lanes.RetriesExhausted, poisonCalls)
	}
}

// gate is a destination that holds every Send until it is opened.
type gate struct {
	lanes.Destination
	open  chan struct{}
	calls chan struct{} // a token per Send that started
}

func newGate(d lanes.Destination) *gate {
	return &gate{Destination: d, open: make(chan struct{}), calls: make(chan struct{}, 1000)}
}

func (g *gate) Send(ctx context.Context, f *lanes.Failure) error {
	g.calls <- struct{}{}
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Destination.Send(ctx, f)
}

// TestIntegrationLimitsSendToFileBeforeCheckpoint: records that fail more
// than MaxRetries times, or until they are older than MaxRecordAge, reach
// the file destination with their metadata, and the checkpoint moves past
// them only once the destination stored them, though the other lanes
// handled every later record.
func TestIntegrationLimitsSendToFileBeforeCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    lanes.Config
		reason lanes.Reason
	}{
		{"MaxRetries", lanes.Config{MaxRetries: 2}, lanes.RetriesExhausted},
		{"MaxRecordAge", lanes.Config{MaxRecordAge: 3 * time.Second}, lanes.RecordTooOld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1)
			const shard = "shardId-000000000000"
			dest, path := openFile(t)
			g := newGate(dest)
			var mu sync.Mutex
			handled := map[string]bool{}
			positions := map[string]checkpoint.SequenceNumber{} // of every record seen
			attempts := map[string]int{}
			cfg := tc.cfg
			cfg.Parallelism, cfg.BatchSize, cfg.Destination = 4, 1, g
			cfg.RetryBackoffBase, cfg.RetryBackoffMax = 50*time.Millisecond, 200*time.Millisecond
			cfg.Handler = lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
				mu.Lock()
				defer mu.Unlock()
				r := b.Records[0]
				d := string(r.Data)
				positions[d] = parse(t, r).pos
				attempts[d]++
				if strings.HasPrefix(d, "key-007#") {
					return errors.New("poison key")
				}
				handled[d] = true
				return nil
			})
			f, err := lanes.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			e.run(e.config("w", f))
			// Records written once the worker reads, so that they are
			// young when first handled.
			wait.For(t, 30*time.Second, "the worker to hold the shard's lease", func() bool {
				l, ok := e.lease(shard)
				return ok && l.Owner == "w"
			})
			total := e.put(20, 10, nil)
			select {
			case <-g.calls:
			case <-time.After(60 * time.Second):
				t.Fatal("no record reached the destination within 60s")
			}
			// The poison key's lane is held at its first record; the
			// other lanes go on past it.
			var firstPoison checkpoint.SequenceNumber
			wait.For(t, 30*time.Second, "50 records after the first given-up one handled", func() bool {
				mu.Lock()
				defer mu.Unlock()
				firstPoison = checkpoint.SequenceNumber{}
				for d, p := range positions {
					if strings.HasPrefix(d, "key-007#") && (firstPoison.Sequence == "" || p.Compare(firstPoison) < 0) {
						firstPoison = p
					}
				}
				n := 0
				for d := range handled {
					if positions[d].Compare(firstPoison) > 0 {
						n++
					}
				}
				return n >= 50
			})
			if wait.Until(time.Second, func() bool { return e.checkpointOf(shard).Compare(firstPoison) >= 0 }) {
				t.Fatalf("checkpoint %s reached the first given-up record %s while the destination held it", e.checkpointOf(shard), firstPoison)
			}
			t.Logf("checkpoint %s below the first given-up record %s while the destination held it", e.checkpointOf(shard), firstPoison)
			close(g.open)
			// Every record is handled or in the file; with MaxRecordAge the
			// records queued behind the held ones in their lane aged out
			// too, without a call.
			var envs []lanes.Envelope
			wait.For(t, 30*time.Second, "every record handled or given up on", func() bool {
				envs = readEnvelopes(t, path)
				mu.Lock()
				defer mu.Unlock()
				n := len(handled)
				for _, env := range envs {
					if handled[string(env.Record.Data)] {
						t.Fatalf("record %s handled and given up on", env.Record.Data)
					}
				}
				return n+len(envs) == total
			})
			var last checkpoint.SequenceNumber
			mu.Lock()
			defer mu.Unlock()
			for d, p := range positions {
				if handled[d] && p.Compare(last) > 0 {
					last = p
				}
			}
			poisoned, poisonLane := 0, -1
			for _, env := range envs {
				if env.Record.PartitionKey == "key-007" && env.Attempts > 0 {
					poisonLane = env.Lane
				}
			}
			for _, env := range envs {
				d := string(env.Record.Data)
				p := checkpoint.SequenceNumber{Sequence: env.Record.SequenceNumber, SubSequence: env.Record.SubSequenceNumber}
				if p.Compare(last) > 0 {
					last = p
				}
				if env.Reason != tc.reason || env.ShardID != shard || env.Attempts != attempts[d] {
					t.Errorf("envelope %+v: want reason %s, shard %s, %d attempts", env, tc.reason, shard, attempts[d])
				}
				if !strings.HasPrefix(d, "key-007#") {
					if tc.reason != lanes.RecordTooOld || env.Lane != poisonLane || env.Attempts != 0 {
						t.Errorf("envelope %+v: a record of another key (only too old ones behind the held records of their lane may be)", env)
					}
					continue
				}
				poisoned++
				if (env.Attempts > 0) != (env.LastError == "poison key") || env.Record.PartitionKey != "key-007" {
					t.Errorf("envelope %+v: want the handler's error (after a call) and the record's partition key", env)
				}
				if tc.reason == lanes.RetriesExhausted && env.Attempts != 3 {
					t.Errorf("%s: %d attempts, want 3 (MaxRetries 2)", d, env.Attempts)
				}
			}
			if poisoned != 10 {
				t.Errorf("%d records of key-007 in the destination, want 10", poisoned)
			}
			t.Logf("%d records given up on, %d of them of key-007", len(envs), poisoned)
			wait.For(t, 30*time.Second, "the checkpoint at the last record", func() bool { return e.checkpointOf(shard) == last })
		})
	}
}
