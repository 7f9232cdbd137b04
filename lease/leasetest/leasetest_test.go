package leasetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/lease"
)

// Every property holds for the memory store: a suite that failed a correct
// store would prove nothing about a broken one.
func TestPropertiesHoldForMemoryStore(t *testing.T) {
	for _, p := range properties {
		if err := p.check(t.Context(), lease.NewMemoryStore()); err != nil {
			t.Errorf("%s fails on lease.MemoryStore: %v", p.name, err)
		}
	}
}

// Each broken store fails the properties it breaks: the suite catches it.
func TestPropertiesCatchBrokenStores(t *testing.T) {
	for _, c := range []struct {
		name  string
		store func() lease.Store
		fails []string
	}{
		{"ignores the counter", func() lease.Store { return ignoresCounter{lease.NewMemoryStore()} },
			[]string{"RenewFencing", "TakeFencing", "Release", "Checkpoint", "Delete", "ConcurrentTakes"}},
		{"ignores the owner", func() lease.Store { return ignoresOwner{lease.NewMemoryStore()} },
			[]string{"RenewFencing", "Release", "Checkpoint"}},
		{"checks the counter apart from the write", func() lease.Store { return checksApart{lease.NewMemoryStore()} },
			[]string{"ConcurrentTakes"}},
		{"drops unknown attributes", func() lease.Store { return dropsUnknown{lease.NewMemoryStore()} },
			[]string{"CreateExists", "GetNotFound", "UnknownAttributesKept"}},
		{"overwrites on Create", func() lease.Store { return overwrites{lease.NewMemoryStore()} },
			[]string{"CreateExists"}},
		{"lists in no order", func() lease.Store { return unordered{lease.NewMemoryStore()} },
			[]string{"List"}},
		{"reads a missing lease as empty", func() lease.Store { return missingIsEmpty{lease.NewMemoryStore()} },
			[]string{"GetNotFound", "Delete", "RenewFencing"}},
		{"hands out what it was given", func() lease.Store { return &sharesInput{Store: lease.NewMemoryStore()} },
			[]string{"ReturnsCopies"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range properties {
				err := p.check(t.Context(), c.store())
				switch {
				case slices.Contains(c.fails, p.name) && err == nil:
					t.Errorf("%s passed a store that %s", p.name, c.name)
				case err != nil:
					t.Logf("%s: %v", p.name, err)
				}
			}
		})
	}
}

// ignoresCounter makes every write on the stored counter, whatever the
// caller's: plain writes, no fencing.
type ignoresCounter struct{ lease.Store }

func (s ignoresCounter) latest(ctx context.Context, l lease.Lease) lease.Lease {
	if cur, err := s.Store.Get(ctx, l.Key); err == nil {
		l.Counter = cur.Counter
	}
	return l
}

func (s ignoresCounter) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.Store.Renew(ctx, s.latest(ctx, l))
}

func (s ignoresCounter) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	return s.Store.Take(ctx, s.latest(ctx, l), owner)
}

func (s ignoresCounter) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.Store.Release(ctx, s.latest(ctx, l))
}

func (s ignoresCounter) Checkpoint(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.Store.Checkpoint(ctx, s.latest(ctx, l))
}

func (s ignoresCounter) Delete(ctx context.Context, l lease.Lease) error {
	return s.Store.Delete(ctx, s.latest(ctx, l))
}

// ignoresOwner checks the counter but not the owner.
type ignoresOwner struct{ lease.Store }

func (s ignoresOwner) owned(ctx context.Context, l lease.Lease) lease.Lease {
	if cur, err := s.Store.Get(ctx, l.Key); err == nil {
		l.Owner = cur.Owner
	}
	return l
}

func (s ignoresOwner) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.Store.Renew(ctx, s.owned(ctx, l))
}

func (s ignoresOwner) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.Store.Release(ctx, s.owned(ctx, l))
}

func (s ignoresOwner) Checkpoint(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.Store.Checkpoint(ctx, s.owned(ctx, l))
}

// checksApart checks a take's counter, then writes in a second step: two
// takers may both pass the check.
type checksApart struct{ lease.Store }

func (s checksApart) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	cur, err := s.Store.Get(ctx, l.Key)
	if err != nil || cur.Counter != l.Counter {
		return lease.Lease{}, fmt.Errorf("take lease %q: %w", l.Key, lease.ErrConflict)
	}
	time.Sleep(10 * time.Millisecond) // the other takers check meanwhile
	return s.Store.Take(ctx, ignoresCounter(s).latest(ctx, l), owner)
}

// dropsUnknown writes only the attributes it knows.
type dropsUnknown struct{ lease.Store }

func (s dropsUnknown) Create(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	l.Extra = nil
	return s.Store.Create(ctx, l)
}

// overwrites creates a lease whether or not its key exists.
type overwrites struct{ lease.Store }

func (s overwrites) Create(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if cur, err := s.Store.Get(ctx, l.Key); err == nil {
		_ = s.Store.Delete(ctx, cur)
	}
	return s.Store.Create(ctx, l)
}

// unordered lists the leases in reverse key order.
type unordered struct{ lease.Store }

func (s unordered) List(ctx context.Context) ([]lease.Lease, error) {
	ls, err := s.Store.List(ctx)
	slices.Reverse(ls)
	return ls, err
}

// missingIsEmpty returns an empty lease for a missing key.
type missingIsEmpty struct{ lease.Store }

func (s missingIsEmpty) Get(ctx context.Context, key string) (lease.Lease, error) {
	l, err := s.Store.Get(ctx, key)
	if err != nil {
		return lease.Lease{Key: key}, nil
	}
	return l, nil
}

// sharesInput keeps the lease given to Create and returns it from Get for
// as long as the counter did not move: the caller's slices and map, shared.
type sharesInput struct {
	lease.Store
	given map[string]lease.Lease
}

func (s *sharesInput) Create(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	out, err := s.Store.Create(ctx, l)
	if err == nil {
		if s.given == nil {
			s.given = map[string]lease.Lease{}
		}
		s.given[l.Key] = l
	}
	return out, err
}

func (s *sharesInput) Get(ctx context.Context, key string) (lease.Lease, error) {
	l, err := s.Store.Get(ctx, key)
	if g, ok := s.given[key]; ok && err == nil && g.Counter == l.Counter {
		return g, nil
	}
	return l, err
}
