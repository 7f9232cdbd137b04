package proxy_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/kinesisgo/kinesis/integration/proxy"
)

// A proxy serving enhanced fan-out: consumers are ACTIVE 2 s after they are
// registered, subscriptions last 30 s instead of 5 minutes, and one event in
// a hundred is replaced by a cut stream. A Kinesis client whose transport
// speaks HTTP/2 only (unencrypted) subscribes over HTTP/2, as with AWS.
func Example_fanOut() {
	p, err := proxy.Start(proxy.Config{
		KinesisURL: "http://127.0.0.1:4568", // kinesis-mock
		FanOut: &proxy.FanOutConfig{
			ConsumerDelay:        2 * time.Second,
			SubscriptionLifetime: 30 * time.Second,
			Faults:               proxy.FanOutFaults{Cut: 0.01},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	httpClient := &http.Client{Transport: &http.Transport{Protocols: protos}}
	_ = httpClient // kinesis.Options.HTTPClient, with BaseEndpoint p.URL()

	fmt.Printf("%+v\n", p.FanOutStats())
	// Output: {Subscriptions:0 Refused:0 TakenOver:0 Expired:0 Events:0 Records:0 Faults:0}
}
