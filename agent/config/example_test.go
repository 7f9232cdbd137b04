package config_test

import (
	"fmt"

	"github.com/kinesisgo/kinesis/agent/config"
)

func ExampleParse() {
	f, err := config.Parse([]byte(`{
		"cloudwatch.emitMetrics": true,
		"flows": [{"filePattern": "/var/log/app/*.log", "kinesisStream": "app", "aggregation": true}]
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fl := f.Flows[0]
	fmt.Println(fl.ID(), fl.InitialPosition, fl.PartitionKeyOption, fl.MaxBufferAge, fl.Aggregation)
	fmt.Println(f.Warnings)

	f, err = config.Parse([]byte(`{"flows": [{"filePattern": "/var/log/a.log", "deliveryStream": "fh", "aggregation": true}]}`))
	fmt.Println(err)
	// Output:
	// app:/var/log/app/*.log END_OF_FILE RANDOM 1s true
	// [key "cloudwatch.emitMetrics" has no effect in this agent]
	// flows[0]: aggregation and compression apply to kinesisStream flows, not deliveryStream
}
