package lease

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// The balancing plan.
//
// The leader computes the plan from its scan of the table and the live
// workers (by heartbeat), for every worker (view.assignments): the plan of
// each worker is what that worker would compute for itself from the same
// view, and the parts are disjoint:
//
//   - M unfinished leases over N live workers: every worker's target is
//     floor(M/N), and M mod N of them get one more. The extra ones go to the
//     workers that hold the most already (ties by worker ID), so a worker at
//     its target is never asked to give a lease up: no ping-pong.
//   - The pool of leases to hand out is the unowned and expired ones (by
//     key), then the surplus of each worker above its target (by worker ID;
//     its leases with the highest keys).
//   - Workers below their target (by worker ID) each get their shortfall
//     from the pool, in order.
//
// Every move in the plan is needed: each lease moves at most once, and only
// surplus leases are moved (by hand-over).

// view is what one assignment pass of the leader saw.
type view struct {
	me      string
	owned   map[string][]Lease // live worker -> its unexpired leases, sorted by key
	free    []Lease            // unowned or expired leases, sorted by key
	workers []string           // live workers and me, sorted
	byCount bool               // Config.BalanceByCount
}

// targets returns each live worker's target.
func (v view) targets() map[string]int {
	total := len(v.free)
	for _, ls := range v.owned {
		total += len(ls)
	}
	n := len(v.workers)
	base, extra := total/n, total%n
	order := slices.Clone(v.workers)
	slices.SortFunc(order, func(a, b string) int {
		if c := cmp.Compare(len(v.owned[b]), len(v.owned[a])); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	t := make(map[string]int, n)
	for i, w := range order {
		t[w] = base
		if i < extra {
			t[w]++
		}
	}
	return t
}

// plan returns the leases the worker v.me should take, in the order it
// should take them: by throughput when every owned lease has it measured
// (and not BalanceByCount), else by count.
func (v view) plan() []Lease {
	if !v.byCount && v.measured() {
		return v.throughputPlan()
	}
	take, _ := v.countPlan()
	return take
}

// assignments returns the plan for every worker of the view: what each
// worker's own plan (plan, with v.me that worker) names. The parts are
// disjoint: the plans were made so that workers computing them on the same
// view agree.
func (v view) assignments() map[string][]Lease {
	out := make(map[string][]Lease, len(v.workers))
	for _, w := range v.workers {
		v.me = w
		if ls := v.plan(); len(ls) > 0 {
			out[w] = ls
		}
	}
	return out
}

// countPlan returns the leases the worker v.me should take to balance the
// lease counts, in the order it should take them, and its target.
func (v view) countPlan() (take []Lease, target int) {
	t := v.targets()
	pool := slices.Clone(v.free)
	for _, w := range v.workers {
		ls := v.owned[w]
		if surplus := len(ls) - t[w]; surplus > 0 {
			pool = append(pool, ls[len(ls)-surplus:]...)
		}
	}
	for _, w := range v.workers {
		need := t[w] - len(v.owned[w])
		if need <= 0 {
			continue
		}
		need = min(need, len(pool))
		if w == v.me {
			return pool[:need], t[w]
		}
		pool = pool[need:]
	}
	return nil, t[v.me]
}

// Balancing by throughput.
//
// Once every owned lease carries the throughput its holder measured
// (throughputKBps, written at each renewal), the plan spreads throughput
// instead of counts, from the same view on every worker:
//
//   - Free leases go one by one (by key) to the worker with the least
//     throughput (then the fewest leases, then by ID); a lease never
//     measured weighs the mean of the measured ones.
//   - A worker with no lease gets one (the lightest of the worker holding
//     the most) while another holds two or more, one a pass.
//   - Otherwise, with no free lease, at most one move a pass: from the worker with the
//     most throughput (a) to the one with the least (b), the lease of a
//     that narrows their gap d the most (weight t, gain d - |d - 2t|),
//     only when the gain exceeds moveThreshold (20 %) of the mean load per
//     worker. Every such move lowers the sum of squared loads (by 2t(d-t)),
//     so the moves stop: the plan settles and does not ping-pong between
//     two assignments while the throughputs stay as measured.
//
// Hot shards so end on different workers; lease counts may differ.

// moveThreshold is the least gain, as a fraction of the mean load per
// worker, that a move for throughput must bring: measurements move a
// little from one renewal to the next, and a move costs a hand-over.
const moveThreshold = 0.2

// measured reports whether every owned lease has a measured throughput and
// their total is positive (an idle stream is balanced by count).
func (v view) measured() bool {
	total, n := 0.0, 0
	for _, ls := range v.owned {
		for _, l := range ls {
			if !l.ThroughputKnown {
				return false
			}
			total += l.ThroughputKBps
			n++
		}
	}
	return n > 0 && total > 0
}

func (v view) throughputPlan() []Lease {
	total, n := 0.0, 0
	for _, ls := range v.owned {
		for _, l := range ls {
			total += l.ThroughputKBps
			n++
		}
	}
	mean := total / float64(n)
	weight := func(l Lease) float64 {
		if l.ThroughputKnown {
			return l.ThroughputKBps
		}
		return mean
	}
	load := make(map[string]float64, len(v.workers))
	count := make(map[string]int, len(v.workers))
	for _, w := range v.workers {
		for _, l := range v.owned[w] {
			load[w] += weight(l)
		}
		count[w] = len(v.owned[w])
	}
	least := func() string {
		best := v.workers[0]
		for _, w := range v.workers[1:] {
			if load[w] < load[best] || load[w] == load[best] && count[w] < count[best] {
				best = w
			}
		}
		return best
	}
	if len(v.free) > 0 {
		var take []Lease
		for _, l := range v.free {
			w := least()
			load[w] += weight(l)
			count[w]++
			if w == v.me {
				take = append(take, l)
			}
		}
		return take
	}
	// A worker with no lease gets one while another holds two or more:
	// the lightest of the worker holding the most. (A move for throughput
	// never empties a worker: the lease of a worker with one gains
	// nothing.)
	if empty, most := v.emptyAndMost(count); empty != "" {
		if empty != v.me {
			return nil
		}
		lightest := v.owned[most][0]
		for _, l := range v.owned[most][1:] {
			if weight(l) < weight(lightest) {
				lightest = l
			}
		}
		return []Lease{lightest}
	}
	a, b := v.workers[0], least()
	for _, w := range v.workers[1:] {
		if load[w] > load[a] {
			a = w
		}
	}
	d := load[a] - load[b]
	var move *Lease
	bestGain := moveThreshold * total / float64(len(v.workers)) // of the mean load per worker
	for i, l := range v.owned[a] {
		t := weight(l)
		if gain := d - math.Abs(d-2*t); gain > bestGain {
			move, bestGain = &v.owned[a][i], gain
		}
	}
	if move == nil || b != v.me {
		return nil
	}
	return []Lease{*move}
}

// emptyAndMost returns the first worker holding no lease and the first
// holding the most, when that is two or more; else "", "".
func (v view) emptyAndMost(count map[string]int) (empty, most string) {
	for _, w := range v.workers {
		if count[w] == 0 && empty == "" {
			empty = w
		}
		if most == "" || count[w] > count[most] {
			most = w
		}
	}
	if empty == "" || count[most] < 2 {
		return "", ""
	}
	return empty, most
}
