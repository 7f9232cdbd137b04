package lanes

import "sync"

// router assigns partition keys to lanes. A key with records in a lane
// (queued or being handled) stays in that lane, so that its records are
// handled in order; a key with none goes to the lane holding the fewest
// records, so that lanes stay busy alike whatever the number of keys and
// their volumes. It is safe for concurrent use.
type router struct {
	mu   sync.Mutex
	keys map[string]*keyLane // keys with records in a lane
	load []int               // records in each lane
}

type keyLane struct {
	lane, n int
}

func newRouter(lanes int) *router {
	return &router{keys: make(map[string]*keyLane), load: make([]int, lanes)}
}

// assign returns the lane of the next record of key.
func (r *router) assign(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[key]
	if !ok {
		best := 0
		for i, n := range r.load {
			if n < r.load[best] {
				best = i
			}
		}
		k = &keyLane{lane: best}
		r.keys[key] = k
	}
	k.n++
	r.load[k.lane]++
	return k.lane
}

// release records that the records of items left their lane.
func (r *router) release(items []item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range items {
		key := items[i].rec.PartitionKey
		k, ok := r.keys[key]
		if !ok {
			continue
		}
		r.load[k.lane]--
		if k.n--; k.n == 0 {
			delete(r.keys, key)
		}
	}
}
