// Package metricreg registers Prometheus collectors so that several
// instances of one component (workers, coordinators, agent flows) in a
// process can share a registry.
package metricreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it; when a collector with the same
// description is already registered, it returns that one instead, so that
// the counts of several instances add up. A nil reg registers nothing.
// Any other registration error (for example a name registered with other
// labels) leaves c unregistered: its values are kept but not exported.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
