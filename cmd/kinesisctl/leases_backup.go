package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/spf13/cobra"
)

// exportFormat names the layout of leases export files.
const exportFormat = "kinesisctl-leases/1"

// leaseExport is the file leases export writes and leases import reads.
// Items are in DynamoDB's JSON form ({"S": "..."}, {"N": "..."}, ...), every
// attribute kept, so that an import restores exactly what was exported.
type leaseExport struct {
	Format     string                       `json:"format"`
	Table      string                       `json:"table"`
	Stream     string                       `json:"stream,omitempty"`
	ExportedAt time.Time                    `json:"exportedAt"`
	Items      []map[string]json.RawMessage `json:"items"`
}

func (a *app) leasesExportCommand() *cobra.Command {
	var table string
	cmd := &cobra.Command{
		Use:   "export APP > FILE",
		Short: "Write every item of an application's lease table as JSON (a backup)",
		Long: `Write every item of the lease table to standard output as JSON: the table's
name, the stream recorded in its tag (if any), and the items in DynamoDB's
JSON form with all their attributes, malformed items included. leases import
reads it. The read is a consistent scan, not a snapshot: workers running
meanwhile may renew or checkpoint leases while it runs.`,
		Args: args("APP"),
	}
	cmd.Flags().StringVar(&table, "table", "", "lease table name (default: APP)")
	cmd.RunE = a.runE("DYNAMODB", func(cmd *cobra.Command, argv []string) error {
		if table == "" {
			table = argv[0]
		}
		ctx := cmd.Context()
		lt, err := a.describeLeaseTable(ctx, table)
		if err != nil {
			return err
		}
		stream, err := a.tableStream(ctx, lt)
		if err != nil {
			return err
		}
		client, err := a.dynamodbClient(ctx)
		if err != nil {
			return err
		}
		items, err := scanItems(ctx, client, table)
		if err != nil {
			return err
		}
		out := leaseExport{Format: exportFormat, Table: table, Stream: stream, ExportedAt: time.Now().UTC(),
			Items: make([]map[string]json.RawMessage, 0, len(items))}
		for _, item := range items {
			j, err := itemToJSON(item)
			if err != nil {
				return fmt.Errorf("item %s: %w", leaseKeyOf(item), err)
			}
			out.Items = append(out.Items, j)
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	})
	return cmd
}

func (a *app) leasesImportCommand() *cobra.Command {
	var (
		table  string
		stream string
	)
	cmd := &cobra.Command{
		Use:   "import APP < FILE",
		Short: "Load a leases export into an empty lease table (restore, or move to a new table)",
		Long: `Read a file written by leases export from standard input and put its items
into the lease table of APP, creating the table if it does not exist
(on-demand capacity). A table that holds any item is in use and refused:
import restores into an empty table only.

Leases are imported unowned (leaseOwner and a hand-over in progress removed),
so that the application's workers take them at once; checkpoints, lineage and
every other attribute are kept. The stream the export names (or --stream) is
recorded in the table's tag ` + streamTagKey + `.`,
		Args: args("APP"),
	}
	cmd.Flags().StringVar(&table, "table", "", "lease table name (default: APP)")
	cmd.Flags().StringVar(&stream, "stream", "", "record this stream in the table's tag (default: the export's)")
	cmd.RunE = a.runE("DYNAMODB", func(cmd *cobra.Command, argv []string) error {
		if table == "" {
			table = argv[0]
		}
		var in leaseExport
		dec := json.NewDecoder(a.stdin)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return usageErr("reading the export from standard input: %v", err)
		}
		if in.Format != exportFormat {
			return usageErr("standard input is not a leases export (format %q, want %q)", in.Format, exportFormat)
		}
		items := make([]map[string]ddbtypes.AttributeValue, 0, len(in.Items))
		for i, j := range in.Items {
			item, err := itemFromJSON(j)
			if err != nil {
				return usageErr("item %d of the export: %v", i, err)
			}
			if _, ok := item[leaseKeyAttr].(*ddbtypes.AttributeValueMemberS); !ok {
				return usageErr("item %d of the export has no string %s", i, leaseKeyAttr)
			}
			for _, attr := range []string{attrOwner, attrCheckpointOwner, attrCheckpointOwnerT} {
				delete(item, attr)
			}
			items = append(items, item)
		}
		ctx := cmd.Context()
		client, store, err := a.leaseStore(ctx, table)
		if err != nil {
			return err
		}
		if err := store.EnsureTable(ctx); err != nil {
			return fmt.Errorf("lease table %s: %w", table, err)
		}
		lt, err := a.describeLeaseTable(ctx, table)
		if err != nil {
			return err
		}
		scan, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), Limit: aws.Int32(1), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return fmt.Errorf("reading table %s: %w", table, err)
		}
		if len(scan.Items) > 0 || len(scan.LastEvaluatedKey) > 0 {
			return fail(exitConflict, nil, "table %s is in use (it holds lease items): import loads an empty table only; "+
				"import into a new table (--table), or delete the table first", table)
		}
		for _, item := range items {
			_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item,
				ConditionExpression:      aws.String("attribute_not_exists(#k)"),
				ExpressionAttributeNames: map[string]string{"#k": leaseKeyAttr}})
			var ccf *ddbtypes.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				return fail(exitConflict, err, "lease %s appeared in table %s during the import: a worker is using the table; "+
					"the leases before it were imported", leaseKeyOf(item), table)
			}
			if err != nil {
				return fmt.Errorf("importing lease %s: %w", leaseKeyOf(item), err)
			}
		}
		if stream == "" {
			stream = in.Stream
		}
		if stream != "" {
			a.recordStream(ctx, lt, stream)
		}
		result := struct {
			Table    string `json:"table"`
			Stream   string `json:"stream,omitempty"`
			Imported int    `json:"imported"`
		}{table, stream, len(items)}
		return a.emit(result, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "imported %d lease items into table %s\n", len(items), table)
			return err
		})
	})
	return cmd
}

// scanItems reads every item of a table with consistent reads.
func scanItems(ctx context.Context, client *dynamodb.Client, table string) ([]map[string]ddbtypes.AttributeValue, error) {
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}
	var items []map[string]ddbtypes.AttributeValue
	for {
		out, err := client.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("scan table %s: %w", table, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.SortFunc(items, func(x, y map[string]ddbtypes.AttributeValue) int {
		kx, ky := leaseKeyOf(x), leaseKeyOf(y)
		switch {
		case kx < ky:
			return -1
		case kx > ky:
			return 1
		}
		return 0
	})
	return items, nil
}

func leaseKeyOf(item map[string]ddbtypes.AttributeValue) string {
	if s, ok := item[leaseKeyAttr].(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return "(no leaseKey)"
}

// attrJSON is an attribute value in DynamoDB's JSON form: exactly one field
// is set.
type attrJSON struct {
	S    *string  `json:"S,omitempty"`
	N    *string  `json:"N,omitempty"`
	B    *string  `json:"B,omitempty"` // base64
	SS   []string `json:"SS,omitempty"`
	NS   []string `json:"NS,omitempty"`
	BS   []string `json:"BS,omitempty"`
	BOOL *bool    `json:"BOOL,omitempty"`
	NULL *bool    `json:"NULL,omitempty"`
	// M and L are pointers so that an empty map or list, which DynamoDB
	// allows, is kept.
	M *map[string]*attrJSON `json:"M,omitempty"`
	L *[]*attrJSON          `json:"L,omitempty"`
}

func toAttrJSON(v ddbtypes.AttributeValue) (*attrJSON, error) {
	switch v := v.(type) {
	case *ddbtypes.AttributeValueMemberS:
		return &attrJSON{S: &v.Value}, nil
	case *ddbtypes.AttributeValueMemberN:
		return &attrJSON{N: &v.Value}, nil
	case *ddbtypes.AttributeValueMemberB:
		s := base64.StdEncoding.EncodeToString(v.Value)
		return &attrJSON{B: &s}, nil
	case *ddbtypes.AttributeValueMemberSS:
		return &attrJSON{SS: v.Value}, nil
	case *ddbtypes.AttributeValueMemberNS:
		return &attrJSON{NS: v.Value}, nil
	case *ddbtypes.AttributeValueMemberBS:
		out := &attrJSON{BS: make([]string, len(v.Value))}
		for i, b := range v.Value {
			out.BS[i] = base64.StdEncoding.EncodeToString(b)
		}
		return out, nil
	case *ddbtypes.AttributeValueMemberBOOL:
		return &attrJSON{BOOL: &v.Value}, nil
	case *ddbtypes.AttributeValueMemberNULL:
		return &attrJSON{NULL: &v.Value}, nil
	case *ddbtypes.AttributeValueMemberM:
		m := make(map[string]*attrJSON, len(v.Value))
		for k, e := range v.Value {
			j, err := toAttrJSON(e)
			if err != nil {
				return nil, err
			}
			m[k] = j
		}
		return &attrJSON{M: &m}, nil
	case *ddbtypes.AttributeValueMemberL:
		l := make([]*attrJSON, 0, len(v.Value))
		for _, e := range v.Value {
			j, err := toAttrJSON(e)
			if err != nil {
				return nil, err
			}
			l = append(l, j)
		}
		return &attrJSON{L: &l}, nil
	}
	return nil, fmt.Errorf("attribute of unknown type %T", v)
}

func fromAttrJSON(j *attrJSON) (ddbtypes.AttributeValue, error) {
	if j == nil {
		return nil, errors.New("empty attribute value")
	}
	switch {
	case j.S != nil:
		return &ddbtypes.AttributeValueMemberS{Value: *j.S}, nil
	case j.N != nil:
		return &ddbtypes.AttributeValueMemberN{Value: *j.N}, nil
	case j.B != nil:
		b, err := base64.StdEncoding.DecodeString(*j.B)
		if err != nil {
			return nil, fmt.Errorf("binary value (B): %w", err)
		}
		return &ddbtypes.AttributeValueMemberB{Value: b}, nil
	case j.SS != nil:
		return &ddbtypes.AttributeValueMemberSS{Value: j.SS}, nil
	case j.NS != nil:
		return &ddbtypes.AttributeValueMemberNS{Value: j.NS}, nil
	case j.BS != nil:
		out := &ddbtypes.AttributeValueMemberBS{Value: make([][]byte, len(j.BS))}
		for i, s := range j.BS {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("binary set value (BS): %w", err)
			}
			out.Value[i] = b
		}
		return out, nil
	case j.BOOL != nil:
		return &ddbtypes.AttributeValueMemberBOOL{Value: *j.BOOL}, nil
	case j.NULL != nil:
		return &ddbtypes.AttributeValueMemberNULL{Value: *j.NULL}, nil
	case j.M != nil:
		out := &ddbtypes.AttributeValueMemberM{Value: make(map[string]ddbtypes.AttributeValue, len(*j.M))}
		for k, e := range *j.M {
			v, err := fromAttrJSON(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out.Value[k] = v
		}
		return out, nil
	case j.L != nil:
		out := &ddbtypes.AttributeValueMemberL{Value: make([]ddbtypes.AttributeValue, 0, len(*j.L))}
		for i, e := range *j.L {
			v, err := fromAttrJSON(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out.Value = append(out.Value, v)
		}
		return out, nil
	}
	return nil, errors.New("attribute value with no type (want one of S, N, B, SS, NS, BS, BOOL, NULL, M, L)")
}

func itemToJSON(item map[string]ddbtypes.AttributeValue) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(item))
	for k, v := range item {
		j, err := toAttrJSON(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		b, err := json.Marshal(j)
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, nil
}

func itemFromJSON(j map[string]json.RawMessage) (map[string]ddbtypes.AttributeValue, error) {
	out := make(map[string]ddbtypes.AttributeValue, len(j))
	for k, raw := range j {
		var a attrJSON
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		v, err := fromAttrJSON(&a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}
