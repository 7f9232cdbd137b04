package proxy

import (
	"testing"

	"github.com/kinesisgo/kinesis/integration/testenv"
)

// StartForTest starts a proxy for a test and closes it when the test ends.
// Empty KinesisURL and DynamoDBURL fields of cfg are filled from the test
// environment (testenv.Require: the test is skipped, or failed under CI, when
// no emulator endpoints are configured). It fails the test if the proxy
// cannot start.
//
// Clients for the proxy: testenv.KinesisClientAt(t, p.URL()) and
// testenv.DynamoDBClientAt(t, p.URL()).
func StartForTest(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	if cfg.KinesisURL == "" || cfg.DynamoDBURL == "" {
		ep := testenv.Require(t)
		if cfg.KinesisURL == "" {
			cfg.KinesisURL = ep.Kinesis
		}
		if cfg.DynamoDBURL == "" {
			cfg.DynamoDBURL = ep.DynamoDB
		}
	}
	p, err := Start(cfg)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("proxy: close: %v", err)
		}
	})
	return p
}
