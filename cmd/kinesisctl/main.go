// Command kinesisctl inspects and steers Kinesis data streams and the lease
// tables of kcl applications: streams, shards and their lineage, resharding
// (by hand, or autoscale: split hot shards at their traffic median, merge
// cold ones), writing and reading records (also through enhanced fan-out
// consumers), leases (reset checkpoints to a time or position, release,
// delete, export, import) and consumer lag.
//
// It reads the standard AWS configuration: --profile or AWS_PROFILE,
// --region or AWS_REGION, and endpoints from --endpoint-url,
// AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL.
// When every configured endpoint is on loopback (the local emulators,
// LocalStack) and no credentials are configured, it signs requests with dummy
// credentials, since local emulators accept any.
//
// Output is a human table by default and JSON with --json. Exit codes:
//
//	0    success
//	1    failure not covered below (an unexpected AWS error); leases and
//	     lag: the lease table holds malformed items (they are listed)
//	2    usage: unknown command or flag, wrong arguments, malformed value
//	     (shard ID, hash key, time, endpoint URL, region, partition key,
//	     a directory given to put), a value AWS rejected as invalid
//	3    not found: stream, shard, consumer or lease table (application), or a table
//	     that is not a lease table (its key is not leaseKey)
//	4    AWS configuration: no credentials, no region, unknown profile,
//	     credentials rejected or access denied
//	5    endpoint unreachable: connection refused, DNS failure, timeout
//	6    conflict: the stream already exists, is busy (not ACTIVE), a shard
//	     is closed, shards are not adjacent, or an AWS limit was reached
//	7    incomplete: put could not deliver some records
//	130  interrupted (SIGINT or SIGTERM) before the command finished, also
//	     while put waits for input; put then writes the records it has read
//	     first, and a second signal ends it at once; tail --follow ends
//	     with 0 when interrupted, as that is how it stops
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cancel() // the command stops; put still writes the records it has read
		<-signals
		os.Exit(exitInterrupted) // a second signal ends the program at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
