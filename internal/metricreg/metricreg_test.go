package metricreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterSharesCollectorOfSameName(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "kinesis_test_total", Help: "test"}
	a := Register(reg, prometheus.NewCounter(opts))
	b := Register(reg, prometheus.NewCounter(opts))
	a.Inc()
	b.Inc()
	if got := testutil.ToFloat64(a); got != 2 {
		t.Fatalf("shared counter = %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg, "kinesis_test_total"); err != nil || n != 1 {
		t.Fatalf("gathered %d series (err %v), want 1", n, err)
	}
}

func TestRegisterNilRegistry(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "kinesis_test_total", Help: "test"})
	if got := Register(nil, c); got != c {
		t.Fatal("Register(nil, c) did not return c")
	}
}
