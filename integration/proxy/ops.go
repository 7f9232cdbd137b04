package proxy

// The operations of each service, as of the AWS SDK for Go v2 the module
// uses. A target naming any other operation is answered with
// UnknownOperationException.
const (
	kinesisTargetPrefix  = "Kinesis_20131202."
	dynamoDBTargetPrefix = "DynamoDB_20120810."
)

var kinesisOps = map[string]bool{
	"AddTagsToStream": true, "CreateChannel": true, "CreateStream": true,
	"DecreaseStreamRetentionPeriod": true, "DeleteChannel": true, "DeleteResourcePolicy": true,
	"DeleteStream": true, "DeregisterStreamConsumer": true, "DescribeAccountSettings": true,
	"DescribeChannel": true, "DescribeLimits": true, "DescribeStream": true,
	"DescribeStreamConsumer": true, "DescribeStreamSummary": true, "DisableEnhancedMonitoring": true,
	"EnableEnhancedMonitoring": true, "GetRecords": true, "GetResourcePolicy": true,
	"GetShardIterator": true, "IncreaseStreamRetentionPeriod": true, "ListChannels": true,
	"ListShards": true, "ListStreamConsumers": true, "ListStreams": true, "ListTagsForResource": true,
	"ListTagsForStream": true, "MergeShards": true, "PutRecord": true, "PutRecords": true,
	"PutResourcePolicy": true, "RegisterStreamConsumer": true, "RemoveTagsFromStream": true,
	"SplitShard": true, "StartStreamEncryption": true, "StopStreamEncryption": true,
	"SubscribeToShard": true, "TagResource": true, "UntagResource": true,
	"UpdateAccountSettings": true, "UpdateChannel": true, "UpdateMaxRecordSize": true,
	"UpdateShardCount": true, "UpdateStreamMode": true,
	"UpdateStreamRecordDistributionStrategy": true, "UpdateStreamWarmThroughput": true,
}

var dynamoDBOps = map[string]bool{
	"BatchExecuteStatement": true, "BatchGetItem": true, "BatchWriteItem": true,
	"CancelBulkOperation": true, "CreateBackup": true, "CreateGlobalTable": true, "CreateTable": true,
	"DeleteBackup": true, "DeleteItem": true, "DeleteResourcePolicy": true, "DeleteTable": true,
	"DescribeBackup": true, "DescribeBulkOperation": true, "DescribeContinuousBackups": true,
	"DescribeContributorInsights": true, "DescribeEndpoints": true, "DescribeExport": true,
	"DescribeGlobalTable": true, "DescribeGlobalTableSettings": true, "DescribeImport": true,
	"DescribeKinesisStreamingDestination": true, "DescribeLimits": true, "DescribeTable": true,
	"DescribeTableReplicaAutoScaling": true, "DescribeTimeToLive": true,
	"DisableKinesisStreamingDestination": true, "EnableKinesisStreamingDestination": true,
	"ExecuteStatement": true, "ExecuteTransaction": true, "ExportTableToPointInTime": true,
	"GetItem": true, "GetResourcePolicy": true, "ImportTable": true, "ListBackups": true,
	"ListBulkOperations": true, "ListContributorInsights": true, "ListExports": true,
	"ListGlobalTables": true, "ListImports": true, "ListTables": true, "ListTagsOfResource": true,
	"PutItem": true, "PutResourcePolicy": true, "Query": true, "RestoreTableFromBackup": true,
	"RestoreTableToPointInTime": true, "Scan": true, "SearchVectors": true, "StartBulkPutItems": true,
	"TagResource": true, "TransactGetItems": true, "TransactWriteItems": true, "UntagResource": true,
	"UpdateContinuousBackups": true, "UpdateContributorInsights": true, "UpdateGlobalTable": true,
	"UpdateGlobalTableSettings": true, "UpdateItem": true, "UpdateKinesisStreamingDestination": true,
	"UpdateTable": true, "UpdateTableReplicaAutoScaling": true, "UpdateTimeToLive": true,
}

// kinesisDataPlane are the Kinesis operations that are not control-plane
// calls (the others can fail with LimitExceededException).
var kinesisDataPlane = map[string]bool{
	"PutRecord": true, "PutRecords": true, "GetRecords": true, "GetShardIterator": true, "SubscribeToShard": true,
}

// kinesisReshardOps change a stream's shards: the proxy refreshes the
// stream's shard map when one passes through.
var kinesisReshardOps = map[string]bool{"SplitShard": true, "MergeShards": true, "UpdateShardCount": true}
