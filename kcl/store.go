package kcl

import (
	"fmt"

	"github.com/kinesisgo/kinesis/lease"
)

// DynamoDBAPI is the part of the DynamoDB client the lease table is kept
// with; *dynamodb.Client implements it.
type DynamoDBAPI = lease.DynamoDBAPI

func newDynamoDBStore(cfg Config) (lease.Store, error) {
	s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{
		DynamoDB: cfg.DynamoDB, Table: cfg.LeaseTable, Logger: cfg.Logger, Metrics: cfg.Metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("kcl: lease table: %w", err)
	}
	return s, nil
}
