package lease

import (
	"cmp"
	"slices"
	"strings"
)

// The balancing plan.
//
// Every worker scans the table and sees the same leases, and so the same
// set of live workers (the owners of unexpired leases, plus itself) and the
// same counts. From that view each worker computes the same plan, and
// carries out only its own part of it, so the workers agree without talking
// to each other:
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
// surplus leases are stolen. A worker with no lease is invisible to the
// others until it takes one; its own plan counts it, and the plans agree
// again from the next scan on.

// view is what one taker pass saw.
type view struct {
	me      string
	owned   map[string][]Lease // live worker -> its unexpired leases, sorted by key
	free    []Lease            // unowned or expired leases, sorted by key
	workers []string           // live workers and me, sorted
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
// should take them, and its target.
func (v view) plan() (take []Lease, target int) {
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
