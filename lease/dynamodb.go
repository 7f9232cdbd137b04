package lease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/metricreg"
)

// DynamoDBAPI is the part of the DynamoDB client the store calls.
// *dynamodb.Client implements it.
type DynamoDBAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateTable(ctx context.Context, in *dynamodb.UpdateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTableOutput, error)
}

// DynamoDBConfig configures a DynamoDBStore.
type DynamoDBConfig struct {
	// DynamoDB is the DynamoDB client. Required. The store makes each call
	// once (its conditional writes turn the client's retries off for
	// themselves); the coordinator and the shard syncer retry.
	DynamoDB DynamoDBAPI
	// Table is the lease table's name. Required.
	Table string
	// ReadCapacity and WriteCapacity, when both are positive, make
	// EnsureTable create a provisioned table with those capacity units.
	// Default 0: on-demand (PAY_PER_REQUEST).
	ReadCapacity  int64
	WriteCapacity int64
	// Logger receives the store's logs (malformed items). Default: none.
	Logger *zap.Logger
	// Metrics registers kinesis_lease_malformed_items_total. Default: none.
	Metrics prometheus.Registerer
}

// Validate reports the first invalid field of cfg.
func (cfg DynamoDBConfig) Validate() error {
	switch {
	case cfg.DynamoDB == nil:
		return errors.New("lease: DynamoDBConfig.DynamoDB is required")
	case cfg.Table == "":
		return errors.New("lease: DynamoDBConfig.Table is required")
	case cfg.ReadCapacity < 0 || cfg.WriteCapacity < 0:
		return fmt.Errorf("lease: DynamoDBConfig capacity %d/%d is negative", cfg.ReadCapacity, cfg.WriteCapacity)
	case (cfg.ReadCapacity > 0) != (cfg.WriteCapacity > 0):
		return errors.New("lease: DynamoDBConfig.ReadCapacity and WriteCapacity must be set together")
	}
	return nil
}

// DynamoDBStore is the Store of a DynamoDB lease table, in the Java KCL
// 2.x schema (docs/design.md, "Lease table"). Updates are conditional
// UpdateItem calls that set only the attributes they change, so attributes
// unknown to this package survive.
type DynamoDBStore struct {
	cfg       DynamoDBConfig
	log       *zap.Logger
	malformed prometheus.Counter
	scanLimit int32 // items per Scan page; 0: DynamoDB's 1 MB pages (tests set it to force pagination)
	now       func() time.Time

	mu     sync.Mutex
	logged map[string]time.Time // malformed item key -> when it was last logged
}

// malformedLogEvery is how often one malformed item is logged again while
// it stays malformed.
const malformedLogEvery = time.Minute

// MalformedItem is an item of the lease table that is not a well-formed
// lease: a required attribute is missing, or one has the wrong type. Its
// shard is not consumed until the item is mended or deleted.
type MalformedItem struct {
	// Key is the item's leaseKey, or "(no leaseKey)".
	Key string
	// Err says what is wrong; it wraps ErrMalformed.
	Err error
}

var _ Store = (*DynamoDBStore)(nil)

// NewDynamoDBStore checks cfg and returns a store. It makes no call:
// EnsureTable creates the table.
func NewDynamoDBStore(cfg DynamoDBConfig) (*DynamoDBStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &DynamoDBStore{cfg: cfg, log: cfg.Logger, now: time.Now, logged: make(map[string]time.Time),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_malformed_items_total", Help: "Lease items skipped because an attribute was missing or of the wrong type.",
		})}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if cfg.Metrics != nil {
		s.malformed = metricreg.Register(cfg.Metrics, s.malformed)
	}
	return s, nil
}

// EnsureTable creates the lease table if it does not exist (hash key
// leaseKey, with the owner index OwnerIndex) and waits until it is ACTIVE,
// until ctx ends; an existing table without the index has it added, and is
// used while the index is built. It then does the same for the coordinator
// state and worker metrics tables (CoordinatorStateSuffix,
// WorkerMetricsSuffix). An existing table with another key schema is an
// error. Unlike the other methods, it retries its own calls that fail with
// a retryable error (throttling, a transient fault), a few times each with
// backoff: it runs once, at start-up, with no pass after it to retry it.
func (s *DynamoDBStore) EnsureTable(ctx context.Context) error {
	in := &dynamodb.CreateTableInput{
		TableName: aws.String(s.cfg.Table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrOwner), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
	}
	s.billing(in)
	idx := s.ownerIndex()
	in.GlobalSecondaryIndexes = []types.GlobalSecondaryIndex{{
		IndexName: idx.IndexName, KeySchema: idx.KeySchema, Projection: idx.Projection, ProvisionedThroughput: idx.ProvisionedThroughput,
	}}
	if err := s.ensureTable(ctx, s.cfg.Table, attrKey, in); err != nil {
		return err
	}
	var out *dynamodb.DescribeTableOutput
	err := withRetry(ctx, storeBackoff, func() (err error) {
		out, err = s.cfg.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.Table)})
		return err
	})
	if err != nil {
		return fmt.Errorf("describe lease table %s: %w", s.cfg.Table, err)
	}
	return s.ensureFleetTables(ctx, out.Table)
}

// ensureTable creates table name with in if it does not exist, and waits
// until it is ACTIVE. An existing table must have key as its hash key
// alone.
func (s *DynamoDBStore) ensureTable(ctx context.Context, name, key string, in *dynamodb.CreateTableInput) error {
	describe := func() (*dynamodb.DescribeTableOutput, error) {
		var out *dynamodb.DescribeTableOutput
		err := withRetry(ctx, storeBackoff, func() (err error) {
			out, err = s.cfg.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
			return err
		})
		return out, err
	}
	out, err := describe()
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		err := withRetry(ctx, storeBackoff, func() error {
			_, err := s.cfg.DynamoDB.CreateTable(ctx, in)
			return err
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // in use: created by another worker, or by a retried call of ours
			return fmt.Errorf("create table %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("describe table %s: %w", name, err)
	default:
		ks := out.Table.KeySchema
		if len(ks) != 1 || aws.ToString(ks[0].AttributeName) != key {
			return fmt.Errorf("table %s exists but its key is not the hash key %s alone", name, key)
		}
		if out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := describe()
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("wait for table %s: %w", name, err)
		}
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for table %s to become ACTIVE: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// List scans the table with consistent reads, page by page. Malformed
// items are skipped, counted, and logged as errors (each at most once a
// minute); ListWithMalformed returns them.
func (s *DynamoDBStore) List(ctx context.Context) ([]Lease, error) {
	ls, _, err := s.ListWithMalformed(ctx)
	return ls, err
}

// ListWithMalformed is List, and the items it skipped as malformed, ordered
// by key: what an operator needs to mend the table.
func (s *DynamoDBStore) ListWithMalformed(ctx context.Context) ([]Lease, []MalformedItem, error) {
	in := &dynamodb.ScanInput{TableName: aws.String(s.cfg.Table), ConsistentRead: aws.Bool(true)}
	if s.scanLimit > 0 {
		in.Limit = aws.Int32(s.scanLimit)
	}
	var out []Lease
	var bad []MalformedItem
	for {
		page, err := s.cfg.DynamoDB.Scan(ctx, in)
		if err != nil {
			return nil, nil, fmt.Errorf("scan lease table %s: %w", s.cfg.Table, err)
		}
		for _, item := range page.Items {
			l, err := fromItem(item)
			if err != nil {
				s.skipMalformed(keyOf(item), err)
				bad = append(bad, MalformedItem{Key: keyOf(item), Err: err})
				continue
			}
			out = append(out, l)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	slices.SortFunc(out, func(a, b Lease) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(bad, func(a, b MalformedItem) int { return strings.Compare(a.Key, b.Key) })
	return out, bad, nil
}

// skipMalformed counts a malformed item and logs it as an error, once a
// minute per item: a scan every few seconds would repeat it endlessly.
func (s *DynamoDBStore) skipMalformed(key string, err error) {
	s.malformed.Inc()
	now := s.now()
	s.mu.Lock()
	last, ok := s.logged[key]
	due := !ok || now.Sub(last) >= malformedLogEvery
	if due {
		s.logged[key] = now
	}
	s.mu.Unlock()
	if due {
		s.log.Error("malformed lease item skipped: its shard is not consumed until the item is mended or deleted",
			zap.String("table", s.cfg.Table), zap.String("lease", key), zap.Error(err))
	}
}

// Get reads one lease with a consistent read.
func (s *DynamoDBStore) Get(ctx context.Context, key string) (Lease, error) {
	out, err := s.cfg.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.cfg.Table), Key: keyAttr(key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %q: %w", key, err)
	}
	if len(out.Item) == 0 {
		return Lease{}, fmt.Errorf("get lease %q: %w", key, ErrNotFound)
	}
	l, err := fromItem(out.Item)
	if err != nil {
		s.skipMalformed(key, err)
		return Lease{}, fmt.Errorf("get lease %q: %w", key, err)
	}
	return l, nil
}

// Create puts l if no item has its key.
func (s *DynamoDBStore) Create(ctx context.Context, l Lease) (Lease, error) {
	if l.Key == "" {
		return Lease{}, errors.New("create lease: empty key")
	}
	_, err := s.cfg.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.cfg.Table),
		Item:                     toItem(l),
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": attrKey},
	}, once)
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return Lease{}, fmt.Errorf("create lease %q: %w", l.Key, ErrExists)
		}
		return Lease{}, fmt.Errorf("create lease %q: %w", l.Key, err)
	}
	l = l.Clone()
	l.LatestTimestamp = toMillis(l.LatestTimestamp)
	slices.Sort(l.ParentShardIDs) // string sets come back sorted
	slices.Sort(l.ChildShardIDs)
	return l, nil
}

// update builds and runs one conditional UpdateItem.
type update struct {
	set    map[string]types.AttributeValue // attribute -> new value
	add    []string                        // attributes incremented by one (created as 1)
	remove []string
	// is and absent add to the condition: attributes with these string
	// values, attributes that do not exist.
	is     map[string]string
	absent []string
}

func (s *DynamoDBStore) update(ctx context.Context, op string, l Lease, checkOwner bool, u update) (Lease, error) {
	names := map[string]string{"#c": attrCounter}
	values := map[string]types.AttributeValue{
		":cur":  numAttr(l.Counter),
		":next": numAttr(l.Counter + 1),
	}
	cond := "#c = :cur"
	if checkOwner {
		names["#o"] = attrOwner
		if l.Owner == "" {
			cond += " AND attribute_not_exists(#o)"
		} else {
			cond += " AND #o = :owner"
			values[":owner"] = &types.AttributeValueMemberS{Value: l.Owner}
		}
	}
	sets := []string{"#c = :next"}
	i := 0
	name := func(attr string) string {
		for k, v := range names {
			if v == attr {
				return k
			}
		}
		i++
		k := "#a" + strconv.Itoa(i)
		names[k] = attr
		return k
	}
	for _, attr := range slices.Sorted(maps.Keys(u.is)) {
		i++
		v := ":c" + strconv.Itoa(i)
		values[v] = &types.AttributeValueMemberS{Value: u.is[attr]}
		cond += " AND " + name(attr) + " = " + v
	}
	for _, attr := range u.absent {
		cond += " AND attribute_not_exists(" + name(attr) + ")"
	}
	for _, attr := range slices.Sorted(maps.Keys(u.set)) {
		i++
		v := ":v" + strconv.Itoa(i)
		values[v] = u.set[attr]
		sets = append(sets, name(attr)+" = "+v)
	}
	if len(u.add) > 0 {
		values[":zero"], values[":one"] = numAttr(0), numAttr(1)
	}
	for _, attr := range u.add {
		n := name(attr)
		sets = append(sets, n+" = if_not_exists("+n+", :zero) + :one")
	}
	expr := "SET " + strings.Join(sets, ", ")
	if len(u.remove) > 0 {
		var rs []string
		for _, attr := range u.remove {
			rs = append(rs, name(attr))
		}
		expr += " REMOVE " + strings.Join(rs, ", ")
	}
	out, err := s.cfg.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.cfg.Table),
		Key:                       keyAttr(l.Key),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	}, once)
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return Lease{}, fmt.Errorf("%s lease %q: %w", op, l.Key, ErrConflict)
		}
		return Lease{}, fmt.Errorf("%s lease %q: %w", op, l.Key, err)
	}
	stored, err := fromItem(out.Attributes)
	if err != nil {
		s.malformed.Inc()
		return Lease{}, fmt.Errorf("%s lease %q: reading the result: %w", op, l.Key, err)
	}
	return stored, nil
}

// Renew increments the counter if Counter and Owner match, and writes the
// measured throughput.
func (s *DynamoDBStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	var u update
	if l.ThroughputKnown {
		u.set = map[string]types.AttributeValue{attrThroughput: floatAttr(l.ThroughputKBps)}
	}
	return s.update(ctx, "renew", l, true, u)
}

// Take sets the owner if Counter matches.
func (s *DynamoDBStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	if owner == "" {
		return Lease{}, fmt.Errorf("take lease %q: empty owner", l.Key)
	}
	u := update{set: map[string]types.AttributeValue{attrOwner: &types.AttributeValueMemberS{Value: owner}}, remove: []string{attrCheckpointOwner}}
	if !l.LatestTimestamp.IsZero() {
		u.set[attrLatestTimestamp] = millisAttr(l.LatestTimestamp)
	}
	if l.Owner != "" && l.Owner != owner { // as the Java KCL: taking an unowned lease is no switch
		u.add = []string{attrOwnerSwitches}
	}
	return s.update(ctx, "take", l, false, u)
}

// Release removes the owner if Counter and Owner match, or, for a lease
// being handed over, CheckpointOwner if it matches too.
func (s *DynamoDBStore) Release(ctx context.Context, l Lease) (Lease, error) {
	if l.CheckpointOwner != "" {
		return s.update(ctx, "release", l, true, update{remove: []string{attrCheckpointOwner}, is: map[string]string{attrCheckpointOwner: l.CheckpointOwner}})
	}
	return s.update(ctx, "release", l, true, update{remove: []string{attrOwner}})
}

// HandOver names next as the owner and the current owner as
// CheckpointOwner, if Counter and Owner match and no hand-over is in
// progress; or redirects the hand-over in progress of l to next.
func (s *DynamoDBStore) HandOver(ctx context.Context, l Lease, next string) (Lease, error) {
	if next == "" || l.Owner == "" || next == l.Owner || next == l.CheckpointOwner {
		return Lease{}, fmt.Errorf("hand over lease %q from %q to %q: need two different owners", l.Key, l.Owner, next)
	}
	if l.CheckpointOwner != "" { // redirect a hand-over in progress
		return s.update(ctx, "hand over", l, true, update{
			set: map[string]types.AttributeValue{attrOwner: &types.AttributeValueMemberS{Value: next}},
			is:  map[string]string{attrCheckpointOwner: l.CheckpointOwner},
		})
	}
	return s.update(ctx, "hand over", l, true, update{
		set: map[string]types.AttributeValue{
			attrOwner:           &types.AttributeValueMemberS{Value: next},
			attrCheckpointOwner: &types.AttributeValueMemberS{Value: l.Owner},
		},
		add:    []string{attrOwnerSwitches},
		absent: []string{attrCheckpointOwner},
	})
}

// Checkpoint writes the progress fields if Counter and Owner match.
func (s *DynamoDBStore) Checkpoint(ctx context.Context, l Lease) (Lease, error) {
	u := update{set: map[string]types.AttributeValue{
		attrCheckpointSub: unsignedAttr(l.CheckpointSubSequence),
		attrOwnerSwitches: numAttr(l.OwnerSwitchesSinceCheckpoint),
	}}
	if l.Checkpoint != "" {
		u.set[attrCheckpoint] = &types.AttributeValueMemberS{Value: l.Checkpoint}
	} else {
		u.remove = append(u.remove, attrCheckpoint)
	}
	if l.PendingCheckpoint != "" {
		u.set[attrPendingCheckpoint] = &types.AttributeValueMemberS{Value: l.PendingCheckpoint}
		u.set[attrPendingCheckpointSub] = unsignedAttr(l.PendingCheckpointSubSequence)
	} else {
		u.remove = append(u.remove, attrPendingCheckpoint, attrPendingCheckpointSub, attrPendingCheckpointStat)
	}
	if len(l.ChildShardIDs) > 0 {
		u.set[attrChildren] = &types.AttributeValueMemberSS{Value: slices.Clone(l.ChildShardIDs)}
	} else {
		u.remove = append(u.remove, attrChildren)
	}
	if l.pinsLatest() {
		u.set[attrLatestTimestamp] = millisAttr(l.LatestTimestamp)
	} else {
		u.remove = append(u.remove, attrLatestTimestamp)
	}
	return s.update(ctx, "checkpoint", l, true, u)
}

// Delete removes the lease if Counter matches.
func (s *DynamoDBStore) Delete(ctx context.Context, l Lease) error {
	_, err := s.cfg.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.cfg.Table),
		Key:                       keyAttr(l.Key),
		ConditionExpression:       aws.String("#c = :cur"),
		ExpressionAttributeNames:  map[string]string{"#c": attrCounter},
		ExpressionAttributeValues: map[string]types.AttributeValue{":cur": numAttr(l.Counter)},
	}, once)
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("delete lease %q: %w", l.Key, ErrConflict)
		}
		return fmt.Errorf("delete lease %q: %w", l.Key, err)
	}
	return nil
}

// once makes a conditional write a single attempt whatever the client's
// retry settings: a write the SDK retried after it had taken effect would
// fail its own condition and read as another writer's, a lost lease. The
// coordinator retries instead, and re-reads after a failed condition.
func once(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} }

func keyAttr(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: key}}
}

func numAttr(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func millisAttr(t time.Time) types.AttributeValue { return numAttr(t.UnixMilli()) }

func floatAttr(f float64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(f, 'f', -1, 64)}
}

func unsignedAttr(n uint64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

func keyOf(item map[string]types.AttributeValue) string {
	if s, ok := item[attrKey].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return "(no leaseKey)"
}

// toItem is the full item of a lease, as Create writes it.
func toItem(l Lease) map[string]types.AttributeValue {
	item := maps.Clone(l.Extra)
	if item == nil {
		item = make(map[string]types.AttributeValue)
	}
	str := func(attr, v string) {
		if v != "" {
			item[attr] = &types.AttributeValueMemberS{Value: v}
		}
	}
	str(attrKey, l.Key)
	str(attrOwner, l.Owner)
	item[attrCounter] = numAttr(l.Counter)
	str(attrCheckpoint, l.Checkpoint)
	if l.Checkpoint != "" || l.CheckpointSubSequence != 0 {
		item[attrCheckpointSub] = unsignedAttr(l.CheckpointSubSequence)
	}
	str(attrPendingCheckpoint, l.PendingCheckpoint)
	if l.PendingCheckpoint != "" || l.PendingCheckpointSubSequence != 0 {
		item[attrPendingCheckpointSub] = unsignedAttr(l.PendingCheckpointSubSequence)
	}
	item[attrOwnerSwitches] = numAttr(l.OwnerSwitchesSinceCheckpoint)
	if len(l.ParentShardIDs) > 0 {
		item[attrParents] = &types.AttributeValueMemberSS{Value: slices.Clone(l.ParentShardIDs)}
	}
	if len(l.ChildShardIDs) > 0 {
		item[attrChildren] = &types.AttributeValueMemberSS{Value: slices.Clone(l.ChildShardIDs)}
	}
	str(attrStartingHashKey, l.StartingHashKey)
	str(attrEndingHashKey, l.EndingHashKey)
	str(attrCheckpointOwner, l.CheckpointOwner)
	if l.ThroughputKnown {
		item[attrThroughput] = floatAttr(l.ThroughputKBps)
	}
	if !l.LatestTimestamp.IsZero() {
		item[attrLatestTimestamp] = millisAttr(l.LatestTimestamp)
	}
	return item
}

// fromItem reads a lease item. leaseKey and leaseCounter are required;
// every known attribute must have its schema type; unknown ones go to
// Extra.
func fromItem(item map[string]types.AttributeValue) (Lease, error) {
	var l Lease
	var errs []error
	str := func(attr string, dst *string) {
		v, ok := item[attr]
		if !ok {
			return
		}
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is not a string", attr))
			return
		}
		*dst = s.Value
	}
	// number returns the text of a number attribute; false when it is
	// absent or (recorded in errs) not a number.
	number := func(attr string) (string, bool) {
		v, ok := item[attr]
		if !ok {
			return "", false
		}
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is not a number", attr))
			return "", false
		}
		return n.Value, true
	}
	num := func(attr string, dst *int64) {
		text, ok := number(attr)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not an integer", attr, text))
			return
		}
		*dst = i
	}
	unsigned := func(attr string, dst *uint64) {
		text, ok := number(attr)
		if !ok {
			return
		}
		i, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not a non-negative integer", attr, text))
			return
		}
		*dst = i
	}
	set := func(attr string, dst *[]string) {
		v, ok := item[attr]
		if !ok {
			return
		}
		ss, ok := v.(*types.AttributeValueMemberSS)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is not a string set", attr))
			return
		}
		*dst = slices.Clone(ss.Value)
		slices.Sort(*dst)
	}
	if _, ok := item[attrKey]; !ok {
		errs = append(errs, errors.New(attrKey+" is missing"))
	}
	if _, ok := item[attrCounter]; !ok {
		errs = append(errs, errors.New(attrCounter+" is missing"))
	}
	str(attrKey, &l.Key)
	str(attrOwner, &l.Owner)
	num(attrCounter, &l.Counter)
	str(attrCheckpoint, &l.Checkpoint)
	unsigned(attrCheckpointSub, &l.CheckpointSubSequence)
	str(attrPendingCheckpoint, &l.PendingCheckpoint)
	unsigned(attrPendingCheckpointSub, &l.PendingCheckpointSubSequence)
	num(attrOwnerSwitches, &l.OwnerSwitchesSinceCheckpoint)
	set(attrParents, &l.ParentShardIDs)
	set(attrChildren, &l.ChildShardIDs)
	str(attrStartingHashKey, &l.StartingHashKey)
	str(attrEndingHashKey, &l.EndingHashKey)
	str(attrCheckpointOwner, &l.CheckpointOwner)
	if text, ok := number(attrThroughput); ok {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			errs = append(errs, fmt.Errorf("%s %q is not a non-negative number", attrThroughput, text))
		} else {
			l.ThroughputKBps, l.ThroughputKnown = f, true
		}
	}
	var latest int64
	if num(attrLatestTimestamp, &latest); latest != 0 {
		l.LatestTimestamp = time.UnixMilli(latest)
	}
	if len(errs) > 0 {
		return Lease{}, fmt.Errorf("%w: %w", ErrMalformed, errors.Join(errs...))
	}
	for k, v := range item {
		if !knownAttrs[k] {
			if l.Extra == nil {
				l.Extra = make(map[string]types.AttributeValue)
			}
			l.Extra[k] = v
		}
	}
	return l, nil
}

var knownAttrs = map[string]bool{
	attrKey: true, attrOwner: true, attrCounter: true, attrCheckpoint: true, attrCheckpointSub: true,
	attrPendingCheckpoint: true, attrPendingCheckpointSub: true, attrOwnerSwitches: true,
	attrParents: true, attrChildren: true, attrStartingHashKey: true, attrEndingHashKey: true,
	attrLatestTimestamp: true, attrCheckpointOwner: true, attrThroughput: true,
}
