package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// The tables and index of the fleet, named as the Java KCL 3.x names them.
const (
	// OwnerIndex is the global secondary index of the lease table on
	// leaseOwner (range key leaseKey, keys only).
	OwnerIndex = "LeaseOwnerToLeaseKeyIndex"
	// CoordinatorStateSuffix makes the coordinator state table's name
	// from the lease table's.
	CoordinatorStateSuffix = "-CoordinatorState"
	// WorkerMetricsSuffix makes the worker metrics table's name from the
	// lease table's.
	WorkerMetricsSuffix = "-WorkerMetricStats"
)

// Attributes of the coordinator state and worker metrics tables.
const (
	attrStateKey      = "key"
	leaderItemKey     = "Leader"
	attrLeaderOwner   = "ownerName"
	attrLeaderCounter = "leaderCounter"
	attrRequests      = "assignmentRequests"
	attrLive          = "liveWorkers"
	noticePrefix      = "notice:"

	attrWorkerID   = "wid"
	attrHeartbeat  = "heartbeat"
	attrUpdated    = "lastUpdateTime"
	attrLeaseCount = "leaseCount"
	attrMaxLeases  = "maxLeases"
	attrLeaving    = "leaving"
	attrWorkerKBps = "throughputKBps"
)

func (s *DynamoDBStore) stateTable() string   { return s.cfg.Table + CoordinatorStateSuffix }
func (s *DynamoDBStore) metricsTable() string { return s.cfg.Table + WorkerMetricsSuffix }

// ensureFleetTables creates the coordinator state and worker metrics
// tables if they do not exist, and adds the owner index to the lease table
// if it lacks it (a table of the Java KCL 2.x, or of an earlier version of
// this package). It does not wait for the index: until it is built, Owned
// scans the lease table instead; a failure to add it (a missing
// permission) is logged, and Owned keeps scanning.
func (s *DynamoDBStore) ensureFleetTables(ctx context.Context, lease *types.TableDescription) error {
	if !hasIndex(lease, OwnerIndex) {
		in := &dynamodb.UpdateTableInput{
			TableName: aws.String(s.cfg.Table),
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(attrOwner), AttributeType: types.ScalarAttributeTypeS},
			},
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: s.ownerIndex()}},
		}
		err := withRetry(ctx, storeBackoff, func() error {
			_, err := s.cfg.DynamoDB.UpdateTable(ctx, in)
			return err
		})
		var inUse *types.ResourceInUseException
		var limit *types.LimitExceededException
		switch {
		case err == nil:
			s.log.Info("adding the owner index to the lease table; leases are found by scanning until it is built",
				zap.String("table", s.cfg.Table))
		case errors.As(err, &inUse) || errors.As(err, &limit) || isValidation(err, "already exists"):
			// being added by another worker
		case ctx.Err() != nil:
			return fmt.Errorf("add index %s to lease table %s: %w", OwnerIndex, s.cfg.Table, err)
		default:
			// Not fatal: without the index each worker finds its leases
			// by scanning the table (only when leases were assigned to
			// it), at a higher read cost.
			s.log.Warn("adding the owner index to the lease table failed; workers find their leases by scanning the table until it exists",
				zap.String("table", s.cfg.Table), zap.String("index", OwnerIndex), zap.Error(err))
		}
	}
	for _, t := range []struct{ name, key string }{{s.stateTable(), attrStateKey}, {s.metricsTable(), attrWorkerID}} {
		in := &dynamodb.CreateTableInput{
			TableName:            aws.String(t.name),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(t.key), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(t.key), KeyType: types.KeyTypeHash}},
		}
		s.billing(in)
		if err := s.ensureTable(ctx, t.name, t.key, in); err != nil {
			return err
		}
	}
	return nil
}

// ownerIndex is the definition of the owner index.
func (s *DynamoDBStore) ownerIndex() *types.CreateGlobalSecondaryIndexAction {
	a := &types.CreateGlobalSecondaryIndexAction{
		IndexName: aws.String(OwnerIndex),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrOwner), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
	}
	if s.cfg.ReadCapacity > 0 {
		a.ProvisionedThroughput = &types.ProvisionedThroughput{
			ReadCapacityUnits: aws.Int64(s.cfg.ReadCapacity), WriteCapacityUnits: aws.Int64(s.cfg.WriteCapacity),
		}
	}
	return a
}

func (s *DynamoDBStore) billing(in *dynamodb.CreateTableInput) {
	in.BillingMode = types.BillingModePayPerRequest
	if s.cfg.ReadCapacity > 0 {
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = &types.ProvisionedThroughput{
			ReadCapacityUnits: aws.Int64(s.cfg.ReadCapacity), WriteCapacityUnits: aws.Int64(s.cfg.WriteCapacity),
		}
	}
}

func hasIndex(t *types.TableDescription, name string) bool {
	if t == nil {
		return false
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == name {
			return true
		}
	}
	return false
}

// isValidation reports whether err is a ValidationException whose message
// contains text.
func isValidation(err error, text string) bool {
	var ae interface {
		ErrorCode() string
		ErrorMessage() string
	}
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" && strings.Contains(ae.ErrorMessage(), text)
}

func leaderKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrStateKey: &types.AttributeValueMemberS{Value: leaderItemKey}}
}

func leaderFromItem(item map[string]types.AttributeValue) LeaderState {
	var l LeaderState
	if v, ok := item[attrLeaderOwner].(*types.AttributeValueMemberS); ok {
		l.Owner = v.Value
	}
	l.Counter = numOf(item[attrLeaderCounter])
	l.Requests = numOf(item[attrRequests])
	if v, ok := item[attrLive].(*types.AttributeValueMemberSS); ok {
		l.Live = slices.Sorted(slices.Values(v.Value))
	}
	for name, v := range item {
		if id, ok := strings.CutPrefix(name, noticePrefix); ok {
			if l.Notices == nil {
				l.Notices = make(map[string]int64)
			}
			l.Notices[id] = numOf(v)
		}
	}
	return l
}

func numOf(v types.AttributeValue) int64 {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	i, _ := strconv.ParseInt(n.Value, 10, 64)
	return i
}

// Leader reads the leader item, consistently.
func (s *DynamoDBStore) Leader(ctx context.Context) (LeaderState, error) {
	out, err := s.cfg.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.stateTable()), Key: leaderKey(), ConsistentRead: aws.Bool(true),
	}, once)
	if err != nil {
		return LeaderState{}, fmt.Errorf("read leader: %w", err)
	}
	return leaderFromItem(out.Item), nil
}

// leaderUpdate makes a conditional update of the leader item.
func (s *DynamoDBStore) leaderUpdate(ctx context.Context, op string, in *dynamodb.UpdateItemInput) (LeaderState, error) {
	in.TableName, in.Key, in.ReturnValues = aws.String(s.stateTable()), leaderKey(), types.ReturnValueAllNew
	out, err := s.cfg.DynamoDB.UpdateItem(ctx, in, once)
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return LeaderState{}, fmt.Errorf("%s: %w", op, ErrConflict)
		}
		return LeaderState{}, fmt.Errorf("%s: %w", op, err)
	}
	return leaderFromItem(out.Attributes), nil
}

// AcquireLeader makes owner the leader if the counter is prev.Counter.
func (s *DynamoDBStore) AcquireLeader(ctx context.Context, prev LeaderState, owner string) (LeaderState, error) {
	in := &dynamodb.UpdateItemInput{
		UpdateExpression:         aws.String("SET #o = :o, #c = :next"),
		ExpressionAttributeNames: map[string]string{"#o": attrLeaderOwner, "#c": attrLeaderCounter},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": &types.AttributeValueMemberS{Value: owner}, ":next": numAttr(prev.Counter + 1),
		},
	}
	if prev.Counter == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(#c)")
	} else {
		in.ConditionExpression = aws.String("#c = :cur")
		in.ExpressionAttributeValues[":cur"] = numAttr(prev.Counter)
	}
	return s.leaderUpdate(ctx, "acquire leader", in)
}

// RenewLeader renews the leader item and adds the notices.
func (s *DynamoDBStore) RenewLeader(ctx context.Context, l LeaderState, notify []string) (LeaderState, error) {
	names := map[string]string{"#o": attrLeaderOwner, "#c": attrLeaderCounter}
	values := map[string]types.AttributeValue{
		":o": &types.AttributeValueMemberS{Value: l.Owner}, ":cur": numAttr(l.Counter), ":next": numAttr(l.Counter + 1),
	}
	expr := "SET #c = :next"
	names["#l"] = attrLive
	if len(l.Live) > 0 {
		expr += ", #l = :l"
		values[":l"] = &types.AttributeValueMemberSS{Value: l.Live}
	} else {
		expr += " REMOVE #l"
	}
	if add := noticeAdds(notify, names, values); add != "" {
		expr += " ADD " + add
	}
	return s.leaderUpdate(ctx, "renew leader", &dynamodb.UpdateItemInput{
		UpdateExpression: aws.String(expr), ConditionExpression: aws.String("#c = :cur AND #o = :o"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
}

// noticeAdds returns the ADD clauses (without ADD) that add one to the
// notice count of each worker, filling names and values.
func noticeAdds(workers []string, names map[string]string, values map[string]types.AttributeValue) string {
	if len(workers) == 0 {
		return ""
	}
	values[":one"] = numAttr(1)
	var adds []string
	seen := make(map[string]bool, len(workers))
	for _, w := range workers {
		if seen[w] {
			continue
		}
		seen[w] = true
		k := "#n" + strconv.Itoa(len(adds))
		names[k] = noticePrefix + w
		adds = append(adds, k+" :one")
	}
	return strings.Join(adds, ", ")
}

// ReleaseLeader removes the leader's owner.
func (s *DynamoDBStore) ReleaseLeader(ctx context.Context, l LeaderState) error {
	_, err := s.leaderUpdate(ctx, "release leader", &dynamodb.UpdateItemInput{
		UpdateExpression:         aws.String("SET #c = :next REMOVE #o"),
		ConditionExpression:      aws.String("#c = :cur AND #o = :o"),
		ExpressionAttributeNames: map[string]string{"#o": attrLeaderOwner, "#c": attrLeaderCounter},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": &types.AttributeValueMemberS{Value: l.Owner}, ":cur": numAttr(l.Counter), ":next": numAttr(l.Counter + 1),
		},
	})
	return err
}

// Notify adds the notices and the request.
func (s *DynamoDBStore) Notify(ctx context.Context, workers []string, request bool) error {
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	add := noticeAdds(workers, names, values)
	if request {
		names["#r"], values[":one"] = attrRequests, numAttr(1)
		if add != "" {
			add += ", "
		}
		add += "#r :one"
	}
	if add == "" {
		return nil
	}
	_, err := s.cfg.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.stateTable()), Key: leaderKey(), UpdateExpression: aws.String("ADD " + add),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}, once)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Heartbeat writes the worker's item.
func (s *DynamoDBStore) Heartbeat(ctx context.Context, w WorkerState) error {
	if w.ID == "" {
		return errors.New("heartbeat: empty worker ID")
	}
	_, err := s.cfg.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.metricsTable()),
		Key:              map[string]types.AttributeValue{attrWorkerID: &types.AttributeValueMemberS{Value: w.ID}},
		UpdateExpression: aws.String("SET #u = :u, #l = :l, #t = :t, #m = :m, #v = :v ADD #h :one"),
		ExpressionAttributeNames: map[string]string{
			"#u": attrUpdated, "#l": attrLeaseCount, "#t": attrWorkerKBps, "#m": attrMaxLeases, "#v": attrLeaving, "#h": attrHeartbeat,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":u": millisAttr(w.Updated), ":l": numAttr(int64(w.Leases)), ":t": floatAttr(w.ThroughputKBps),
			":m": numAttr(int64(w.MaxLeases)), ":v": &types.AttributeValueMemberBOOL{Value: w.Leaving}, ":one": numAttr(1),
		},
	}, once)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// RemoveWorker deletes the worker's item.
func (s *DynamoDBStore) RemoveWorker(ctx context.Context, id string) error {
	_, err := s.cfg.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.metricsTable()),
		Key:       map[string]types.AttributeValue{attrWorkerID: &types.AttributeValueMemberS{Value: id}},
	}, once)
	if err != nil {
		return fmt.Errorf("remove worker %q: %w", id, err)
	}
	return nil
}

// Workers scans the worker metrics table, eventually consistent.
func (s *DynamoDBStore) Workers(ctx context.Context) ([]WorkerState, error) {
	var ws []WorkerState
	in := &dynamodb.ScanInput{TableName: aws.String(s.metricsTable())}
	for {
		out, err := s.cfg.DynamoDB.Scan(ctx, in, once)
		if err != nil {
			return nil, fmt.Errorf("scan worker metrics: %w", err)
		}
		for _, item := range out.Items {
			id, ok := item[attrWorkerID].(*types.AttributeValueMemberS)
			if !ok {
				continue
			}
			w := WorkerState{
				ID: id.Value, Heartbeat: numOf(item[attrHeartbeat]), Leases: int(numOf(item[attrLeaseCount])),
				MaxLeases: int(numOf(item[attrMaxLeases])), Updated: time.UnixMilli(numOf(item[attrUpdated])),
			}
			if v, ok := item[attrWorkerKBps].(*types.AttributeValueMemberN); ok {
				w.ThroughputKBps, _ = strconv.ParseFloat(v.Value, 64)
			}
			if v, ok := item[attrLeaving].(*types.AttributeValueMemberBOOL); ok {
				w.Leaving = v.Value
			}
			ws = append(ws, w)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	return ws, nil
}

// Owned queries the owner index; while the index is missing or being
// built, it scans the lease table for owner's leases instead.
func (s *DynamoDBStore) Owned(ctx context.Context, owner string) ([]string, error) {
	names := map[string]string{"#o": attrOwner, "#k": attrKey}
	values := map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: owner}}
	var keys []string
	q := &dynamodb.QueryInput{
		TableName: aws.String(s.cfg.Table), IndexName: aws.String(OwnerIndex),
		KeyConditionExpression: aws.String("#o = :o"), ProjectionExpression: aws.String("#k"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}
	for {
		out, err := s.cfg.DynamoDB.Query(ctx, q, once)
		if err != nil {
			var nf *types.ResourceNotFoundException
			if isValidation(err, "") || errors.As(err, &nf) {
				return s.ownedByScan(ctx, owner)
			}
			return nil, fmt.Errorf("query leases of %q: %w", owner, err)
		}
		for _, item := range out.Items {
			keys = append(keys, keyOf(item))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return keys, nil
		}
		q.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// ownedByScan is Owned without the index.
func (s *DynamoDBStore) ownedByScan(ctx context.Context, owner string) ([]string, error) {
	var keys []string
	in := &dynamodb.ScanInput{
		TableName: aws.String(s.cfg.Table), FilterExpression: aws.String("#o = :o"), ProjectionExpression: aws.String("#k"),
		ExpressionAttributeNames:  map[string]string{"#o": attrOwner, "#k": attrKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: owner}},
	}
	for {
		out, err := s.cfg.DynamoDB.Scan(ctx, in, once)
		if err != nil {
			return nil, fmt.Errorf("scan leases of %q: %w", owner, err)
		}
		for _, item := range out.Items {
			keys = append(keys, keyOf(item))
		}
		if len(out.LastEvaluatedKey) == 0 {
			slices.Sort(keys)
			return keys, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
