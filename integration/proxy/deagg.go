package proxy

import "github.com/kinesisgo/kinesis/kpl/aggregation"

// userRecords returns how many user records a Kinesis record holds: the
// records of a valid KPL aggregated container (compressed or not), else 1
// (anything that is not a valid container is one plain record, as the KCL
// treats it).
func userRecords(data []byte) int {
	if !aggregation.IsContainer(data) {
		return 1
	}
	recs, ok := aggregation.Decode(data)
	if !ok {
		return 1
	}
	return len(recs)
}
