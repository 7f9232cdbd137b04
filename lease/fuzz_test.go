package lease

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// FuzzFromItem: decoding a lease item never panics; an item that decodes
// encodes back (toItem) to one that decodes to the same lease.
func FuzzFromItem(f *testing.F) {
	f.Add("shardId-000000000000", "w1", "7", "49590338271490256608559692538361571095921575989136588801", "3", "shardId-0,shardId-1", "1700000000123", uint8(0), "throughputKBps")
	f.Add("k", "", "-1", "", "18446744073709551615", "", "0", uint8(0xff), "")
	f.Add("", "", "x", "SHARD_END", "-3", ",", "1.5", uint8(0x55), "leaseKey")
	f.Fuzz(func(t *testing.T, key, owner, counter, cp, sub, parents, latest string, types_ uint8, extra string) {
		item := map[string]types.AttributeValue{}
		// Each bit of types_ gives one attribute the wrong type.
		put := func(bit uint, attr string, v types.AttributeValue, wrong types.AttributeValue) {
			if types_&(1<<bit) != 0 {
				v = wrong
			}
			item[attr] = v
		}
		s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
		n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
		if key != "" {
			put(0, attrKey, s(key), n(key))
		}
		if owner != "" {
			put(1, attrOwner, s(owner), &types.AttributeValueMemberBOOL{Value: true})
		}
		put(2, attrCounter, n(counter), s(counter))
		if cp != "" {
			put(3, attrCheckpoint, s(cp), n(cp))
		}
		put(4, attrCheckpointSub, n(sub), s(sub))
		if parents != "" {
			put(5, attrParents, &types.AttributeValueMemberSS{Value: strings.Split(parents, ",")}, s(parents))
		}
		put(6, attrLatestTimestamp, n(latest), s(latest))
		if extra != "" {
			put(7, extra, s(extra), &types.AttributeValueMemberNULL{Value: true})
		}
		l, err := fromItem(item)
		if err != nil {
			return
		}
		again, err := fromItem(toItem(l))
		if err != nil {
			t.Fatalf("the encoding of %+v does not decode: %v", l, err)
		}
		if !reflect.DeepEqual(again, l) {
			t.Fatalf("round trip changed the lease:\n got %+v\nwant %+v", again, l)
		}
	})
}
