package proxy

import (
	"testing"
	"time"
)

func TestFanOutConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  FanOutConfig
		ok   bool
	}{
		{"zero", FanOutConfig{}, true},
		{"no delay", FanOutConfig{ConsumerDelay: -1}, true},
		{"negative consumers", FanOutConfig{MaxConsumers: -1}, false},
		{"negative rate", FanOutConfig{BytesPerSecond: -1}, false},
		{"negative lifetime", FanOutConfig{SubscriptionLifetime: -time.Second}, false},
		{"negative poll", FanOutConfig{PollInterval: -time.Second}, false},
		{"cut above 1", FanOutConfig{Faults: FanOutFaults{Cut: 1.5}}, false},
		{"failure NaN", FanOutConfig{Faults: FanOutFaults{InternalFailure: zero / zero}}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err := (Config{KinesisURL: "http://127.0.0.1:1", FanOut: &tc.cfg}).Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Config.Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	d := FanOutConfig{ConsumerDelay: -1}.withDefaults()
	if d.ConsumerDelay != 0 || d.MaxConsumers != 20 || d.SubscriptionLifetime != 5*time.Minute || d.BytesPerSecond != 2<<20 {
		t.Errorf("defaults: %+v", d)
	}
}

var zero float64

func TestDecrement(t *testing.T) {
	for in, want := range map[string]string{
		"49680752618282213041263393701405991958187743678694424578": "49680752618282213041263393701405991958187743678694424577",
		"1000": "999", "1": "0", "0": "", "": "", "12a": "",
	} {
		if got := decrement(in); got != want {
			t.Errorf("decrement(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConsumerStatus(t *testing.T) {
	now := time.Unix(1e9, 0)
	c := &consumer{created: now, activeAt: now.Add(time.Second)}
	if s := c.status(now); s != "CREATING" {
		t.Errorf("at registration: %s", s)
	}
	if s := c.status(now.Add(time.Second)); s != "ACTIVE" {
		t.Errorf("after the delay: %s", s)
	}
	c.deleteAt = now.Add(3 * time.Second)
	if s := c.status(now.Add(2 * time.Second)); s != "DELETING" || c.gone(now.Add(2*time.Second)) {
		t.Errorf("deregistered: %s, gone %v", s, c.gone(now.Add(2*time.Second)))
	}
	if !c.gone(now.Add(3 * time.Second)) {
		t.Error("not gone after the delay")
	}
}
