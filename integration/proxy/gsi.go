package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Global secondary indexes added to an existing table.
//
// DynamoDB builds an index added by UpdateTable in place: the table stays
// usable, the index is CREATING (DescribeTable reports IndexStatus
// CREATING and Backfilling true) until every item is indexed, and a Query
// on it fails meanwhile with a ValidationException; then it is ACTIVE. An
// index holds only the items that have its key attributes (a sparse
// index), in the order of its range key. dynalite answers an UpdateTable
// that creates an index with a validation error on an on-demand table (it
// requires ProvisionedThroughput, which AWS refuses there) and never builds
// one; under Config.ModelIndexes the proxy keeps such indexes itself, and
// answers DescribeTable and Query for them.

// modelIndex is an index the proxy keeps for a table.
type modelIndex struct {
	name, hash, rng string
	projection      json.RawMessage
	ready           time.Time // ACTIVE from then on
}

type indexes struct {
	mu     sync.Mutex
	tables map[string][]*modelIndex
}

func (x *indexes) get(table, name string) *modelIndex {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ix := range x.tables[table] {
		if ix.name == name {
			return ix
		}
	}
	return nil
}

func (x *indexes) of(table string) []*modelIndex {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.tables[table])
}

type keyElement struct {
	AttributeName string
	KeyType       string
}

// updateTable records the indexes an UpdateTable creates; other updates
// are forwarded.
func (p *Proxy) updateTable(ctx context.Context, h http.Header, body []byte) (response, bool) {
	var in struct {
		TableName                   string
		GlobalSecondaryIndexUpdates []struct {
			Create *struct {
				IndexName  string
				KeySchema  []keyElement
				Projection json.RawMessage
			}
			Update, Delete json.RawMessage
		}
	}
	if json.Unmarshal(body, &in) != nil || len(in.GlobalSecondaryIndexUpdates) == 0 {
		return response{}, false
	}
	var made []*modelIndex
	for _, u := range in.GlobalSecondaryIndexUpdates {
		if u.Create == nil || u.Update != nil || u.Delete != nil {
			return response{}, false // not modelled: forwarded
		}
		ix := &modelIndex{name: u.Create.IndexName, projection: u.Create.Projection, ready: p.cfg.Now().Add(p.cfg.IndexBuildTime)}
		for _, k := range u.Create.KeySchema {
			switch k.KeyType {
			case "HASH":
				ix.hash = k.AttributeName
			case "RANGE":
				ix.rng = k.AttributeName
			}
		}
		if ix.name == "" || ix.hash == "" {
			return errorResponse(dynamoDBService, awsError{status: http.StatusBadRequest, code: codeValidation,
				message: "an index to create needs a name and a HASH key"}), true
		}
		if p.idx.get(in.TableName, ix.name) != nil {
			return errorResponse(dynamoDBService, awsError{status: http.StatusBadRequest, code: codeValidation,
				message: fmt.Sprintf("Attempting to create an index which already exists: %s", ix.name)}), true
		}
		made = append(made, ix)
	}
	// The table must exist: its description is the answer.
	resp := p.describe(ctx, h, in.TableName)
	if resp.status != http.StatusOK {
		return resp, true
	}
	p.idx.mu.Lock()
	if p.idx.tables == nil {
		p.idx.tables = make(map[string][]*modelIndex)
	}
	p.idx.tables[in.TableName] = append(p.idx.tables[in.TableName], made...)
	p.idx.mu.Unlock()
	return p.withIndexes(in.TableName, resp, "TableDescription"), true
}

// describe asks the upstream for a table's description.
func (p *Proxy) describe(ctx context.Context, h http.Header, table string) response {
	b, _ := json.Marshal(map[string]string{"TableName": table})
	uh := h.Clone()
	uh.Set("X-Amz-Target", dynamoDBTargetPrefix+"DescribeTable")
	resp, err := p.forward(ctx, dynamoDBService, uh, b)
	if err != nil {
		return errorResponse(dynamoDBService, upstreamFailure(err))
	}
	return resp
}

// withIndexes adds the modelled indexes of table to a description under
// field (Table or TableDescription) of resp.
func (p *Proxy) withIndexes(table string, resp response, field string) response {
	ixs := p.idx.of(table)
	if len(ixs) == 0 || resp.status != http.StatusOK {
		return resp
	}
	var out map[string]map[string]any
	if json.Unmarshal(resp.body, &out) != nil || out[field] == nil {
		return resp
	}
	desc := out[field]
	list, _ := desc["GlobalSecondaryIndexes"].([]any)
	now := p.cfg.Now()
	for _, ix := range ixs {
		status, backfilling := "ACTIVE", false
		if now.Before(ix.ready) {
			status, backfilling = "CREATING", true
		}
		ks := []map[string]string{{"AttributeName": ix.hash, "KeyType": "HASH"}}
		if ix.rng != "" {
			ks = append(ks, map[string]string{"AttributeName": ix.rng, "KeyType": "RANGE"})
		}
		arn, _ := desc["TableArn"].(string)
		list = append(list, map[string]any{
			"IndexName": ix.name, "KeySchema": ks, "Projection": ix.projection, "IndexStatus": status,
			"Backfilling": backfilling, "IndexArn": arn + "/index/" + ix.name, "ItemCount": 0, "IndexSizeBytes": 0,
		})
	}
	desc["GlobalSecondaryIndexes"] = list
	b, err := json.Marshal(out)
	if err != nil {
		return resp
	}
	return jsonResponse(dynamoDBService, b)
}

// describeTable adds the modelled indexes to DescribeTable's answer.
func (p *Proxy) describeTable(ctx context.Context, h http.Header, body []byte) response {
	var in struct{ TableName string }
	_ = json.Unmarshal(body, &in)
	return p.withIndexes(in.TableName, p.describe(ctx, h, in.TableName), "Table")
}

// queryIndex answers a Query on a modelled index: a ValidationException
// while it is built, then the items of a Scan of the table filtered by the
// key condition (which holds only when the index's key attributes exist),
// sorted by the index's range key. It reports false for other queries.
func (p *Proxy) queryIndex(ctx context.Context, h http.Header, body []byte) (response, bool) {
	var in struct {
		TableName, IndexName                         string
		KeyConditionExpression, ProjectionExpression string
		FilterExpression                             string
		ExpressionAttributeNames                     map[string]string
		ExpressionAttributeValues                    map[string]json.RawMessage
		ScanIndexForward                             *bool
	}
	if json.Unmarshal(body, &in) != nil || in.IndexName == "" {
		return response{}, false
	}
	ix := p.idx.get(in.TableName, in.IndexName)
	if ix == nil {
		return response{}, false
	}
	if p.cfg.Now().Before(ix.ready) {
		return errorResponse(dynamoDBService, awsError{status: http.StatusBadRequest, code: codeValidation,
			message: "Cannot read from backfilling global secondary index: " + ix.name}), true
	}
	filter := in.KeyConditionExpression
	if in.FilterExpression != "" {
		filter = "(" + filter + ") AND (" + in.FilterExpression + ")"
	}
	scan := map[string]any{"TableName": in.TableName, "FilterExpression": filter}
	if in.ProjectionExpression != "" {
		scan["ProjectionExpression"] = in.ProjectionExpression
	}
	if len(in.ExpressionAttributeNames) > 0 {
		scan["ExpressionAttributeNames"] = in.ExpressionAttributeNames
	}
	if len(in.ExpressionAttributeValues) > 0 {
		scan["ExpressionAttributeValues"] = in.ExpressionAttributeValues
	}
	uh := h.Clone()
	uh.Set("X-Amz-Target", dynamoDBTargetPrefix+"Scan")
	var items []map[string]map[string]any
	for {
		b, _ := json.Marshal(scan)
		resp, err := p.forward(ctx, dynamoDBService, uh, b)
		if err != nil {
			return errorResponse(dynamoDBService, upstreamFailure(err)), true
		}
		if resp.status != http.StatusOK {
			return resp, true
		}
		var page struct {
			Items            []map[string]map[string]any
			LastEvaluatedKey map[string]any
		}
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return errorResponse(dynamoDBService, awsError{status: http.StatusInternalServerError, code: codeInternalFailure,
				message: "proxy: reading the upstream Scan: " + err.Error()}), true
		}
		items = append(items, page.Items...)
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		scan["ExclusiveStartKey"] = page.LastEvaluatedKey
	}
	if ix.rng != "" {
		key := func(it map[string]map[string]any) string { s, _ := it[ix.rng]["S"].(string); return s }
		slices.SortStableFunc(items, func(a, b map[string]map[string]any) int {
			if ka, kb := key(a), key(b); ka != kb {
				if ka < kb {
					return -1
				}
				return 1
			}
			return 0
		})
		if in.ScanIndexForward != nil && !*in.ScanIndexForward {
			slices.Reverse(items)
		}
	}
	if items == nil {
		items = []map[string]map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"Items": items, "Count": len(items), "ScannedCount": len(items)})
	return jsonResponse(dynamoDBService, b), true
}
