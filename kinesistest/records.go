package kinesistest

import (
	"time"

	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// Record is a record stored in the stream, as it was written.
type Record struct {
	// ShardID is the shard that holds the record.
	ShardID string
	// SequenceNumber is the record's sequence number.
	SequenceNumber string
	// PartitionKey is the record's partition key.
	PartitionKey string
	// ExplicitHashKey is the explicit hash key it was written with, or ""
	// for none.
	ExplicitHashKey string
	// Data is the record's data (a copy).
	Data []byte
	// ArrivalTime is when the stream received the record, on Config.Now.
	ArrivalTime time.Time
}

// UserRecord is a user record read back from the stream: a KPL aggregated
// record's sub-record, or a plain record.
type UserRecord struct {
	// ShardID and SequenceNumber are those of the Kinesis record that holds
	// the user record.
	ShardID, SequenceNumber string
	// SubSequenceNumber is the user record's position in its aggregated
	// record (0 for a plain record).
	SubSequenceNumber uint64
	// Aggregated reports whether the user record came out of an aggregated
	// record.
	Aggregated bool
	// PartitionKey and ExplicitHashKey are the user record's own keys.
	PartitionKey, ExplicitHashKey string
	// Data is the user record's data.
	Data []byte
}

// Records returns the records stored in a shard, in sequence order (none
// for an unknown shard, a shard aged out by Expire, or a stream with
// Config.Discard). Synthetic records are not included.
func (s *Stream) Records(shardID string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[shardID]
	if sh == nil {
		return nil
	}
	return sh.stored(nil)
}

// AllRecords returns the records of every shard, shard by shard in the
// order the shards were created, each shard's in sequence order.
func (s *Stream) AllRecords() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, sh := range s.shards {
		out = sh.stored(out)
	}
	return out
}

func (sh *shard) stored(dst []Record) []Record {
	for _, r := range sh.records {
		dst = append(dst, Record{
			ShardID: sh.id, SequenceNumber: r.seqStr, PartitionKey: r.pk, ExplicitHashKey: r.ehk,
			Data: append([]byte(nil), r.data...), ArrivalTime: r.at,
		})
	}
	return dst
}

// UserRecords returns the user records of AllRecords: KPL aggregated
// records (compressed ones included) are taken apart with
// aggregation.Decode, other records are user records of their own.
func (s *Stream) UserRecords() []UserRecord {
	var out []UserRecord
	for _, r := range s.AllRecords() {
		subs, ok := aggregation.Decode(r.Data)
		if !ok {
			out = append(out, UserRecord{
				ShardID: r.ShardID, SequenceNumber: r.SequenceNumber,
				PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data,
			})
			continue
		}
		for _, u := range subs {
			out = append(out, UserRecord{
				ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: u.SubSequenceNumber, Aggregated: true,
				PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey, Data: u.Data,
			})
		}
	}
	return out
}
