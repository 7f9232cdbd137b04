package kcl

import (
	"errors"

	"github.com/kinesisgo/kinesis/lease"
)

// DynamoDBAPI is the DynamoDB client the lease table is kept in.
type DynamoDBAPI = any

func newDynamoDBStore(cfg Config) (lease.Store, error) {
	return nil, errors.New("kcl: DynamoDB lease store not available yet")
}
