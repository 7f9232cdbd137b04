package proxy

import (
	"fmt"
	"sync"
)

// sink hands out the sequence numbers of the records the proxy answers
// itself in sink mode.
type sink struct {
	mu     sync.Mutex
	shards map[string]*sinkShard // by stream key + "/" + shard ID
}

type sinkShard struct {
	index int    // order of first use, distinguishes shards' numbers
	next  uint64 // next record's counter
}

func newSink() *sink { return &sink{shards: make(map[string]*sinkShard)} }

// sequenceNumber returns the next sequence number of a shard: 56 decimal
// digits like Kinesis's, increasing per shard both as numbers and as
// strings.
func (s *sink) sequenceNumber(shardKey string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, ok := s.shards[shardKey]
	if !ok {
		sh = &sinkShard{index: len(s.shards)}
		s.shards[shardKey] = sh
	}
	n := sh.next
	sh.next++
	return fmt.Sprintf("49%018d%036d", sh.index, n)
}
