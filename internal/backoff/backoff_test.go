package backoff

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestCeiling(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, 100 * time.Millisecond}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond},
		{4, 800 * time.Millisecond}, {5, time.Second}, {1000, time.Second},
	} {
		if got := p.Ceiling(tc.attempt); got != tc.want {
			t.Errorf("Ceiling(%d) = %v, want %v", tc.attempt, got, tc.want)
		}
	}
	if got := (Policy{}).Delay(3); got != 0 {
		t.Errorf("zero policy Delay = %v, want 0", got)
	}
}

// TestDelayFullJitter: delays spread over the whole of [Min, Min+ceiling].
func TestDelayFullJitter(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: 400 * time.Millisecond, Min: 10 * time.Millisecond}
	var low, high bool
	for range 2000 {
		d := p.Delay(3)
		if d < p.Min || d > p.Min+400*time.Millisecond {
			t.Fatalf("Delay(3) = %v outside [10ms, 410ms]", d)
		}
		low = low || d < p.Min+40*time.Millisecond
		high = high || d > p.Min+360*time.Millisecond
	}
	if !low || !high {
		t.Errorf("2000 delays did not reach both ends of the range (low %v, high %v)", low, high)
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(context.Background(), time.Minute); err != nil || time.Since(start) != time.Minute {
			t.Errorf("Sleep(1m) = %v after %v", err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Errorf("Sleep past the deadline = %v after %v", err, time.Since(start))
		}
		if err := Sleep(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Sleep(0) on an ended context = %v", err)
		}
		if err := (Policy{Base: time.Second}).Wait(context.Background(), 1); err != nil {
			t.Errorf("Wait = %v", err)
		}
	})
}
