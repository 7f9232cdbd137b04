package kcl

import (
	"math/big"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// deaggregator turns Kinesis records into user records: KPL aggregated
// records are taken apart (always; a record that is not a valid container is
// one plain user record), and user records at or below the checkpoint the
// shard resumed from are skipped.
type deaggregator struct {
	shardID string
	// resume is the checkpoint reading started at (AT_SEQUENCE_NUMBER);
	// user records at or below (resumeSeq, resumeSub) are skipped. nil once
	// a record past it was seen, or when reading did not start at a
	// sequence number.
	resumeSeq *big.Int
	resumeSub uint64
	// hashRange is the shard's hash key range; user records outside it
	// are delivered and counted. nil when unknown.
	hashRange *hashkey.Range
	// outside counts user records whose hash key lies outside hashRange.
	outside func(n int)
	scratch []aggregation.UserRecord
}

// appendRecords appends the user records of recs to dst.
func (d *deaggregator) appendRecords(dst []Record, recs []types.Record) []Record {
	for i := range recs {
		r := &recs[i]
		seq := aws.ToString(r.SequenceNumber)
		arrival := aws.ToTime(r.ApproximateArrivalTimestamp)
		// At the checkpointed record, sub-sequence numbers up to and
		// including skipThrough are skipped.
		atResume, skipThrough := false, uint64(0)
		if d.resumeSeq != nil {
			if n, ok := new(big.Int).SetString(seq, 10); ok {
				c := n.Cmp(d.resumeSeq)
				if c < 0 {
					continue // before the checkpoint: already processed
				}
				if c == 0 {
					atResume, skipThrough = true, d.resumeSub
				}
			}
			d.resumeSeq = nil
		}
		users, ok := aggregation.DecodeAppend(d.scratch[:0], r.Data)
		if !ok {
			if atResume {
				continue // the checkpointed record itself
			}
			dst = append(dst, Record{
				ShardID:                     d.shardID,
				SequenceNumber:              seq,
				PartitionKey:                aws.ToString(r.PartitionKey),
				ApproximateArrivalTimestamp: arrival,
				Data:                        r.Data,
			})
			continue
		}
		d.scratch = users
		outside := 0
		for j := range users {
			u := &users[j]
			sub := u.SubSequenceNumber
			if atResume && sub <= skipThrough {
				continue
			}
			if d.hashRange != nil && !d.inRange(u) {
				outside++
			}
			dst = append(dst, Record{
				ShardID:                     d.shardID,
				SequenceNumber:              seq,
				SubSequenceNumber:           sub,
				Aggregated:                  true,
				PartitionKey:                u.PartitionKey,
				ExplicitHashKey:             u.ExplicitHashKey,
				ApproximateArrivalTimestamp: arrival,
				Data:                        u.Data,
			})
		}
		if outside > 0 && d.outside != nil {
			d.outside(outside)
		}
	}
	clear(d.scratch) // drop references to the data of this batch
	return dst
}

func (d *deaggregator) inRange(u *aggregation.UserRecord) bool {
	k := hashkey.FromPartitionKey(u.PartitionKey)
	if u.ExplicitHashKey != "" {
		ek, err := hashkey.Parse(u.ExplicitHashKey)
		if err != nil {
			return false
		}
		k = ek
	}
	return d.hashRange.Contains(k)
}
