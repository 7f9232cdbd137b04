package proxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
)

const testRole = "arn:aws:iam::123456789012:role/shipper"

func stsClient(p *proxy.Proxy) *sts.Client {
	return sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(p.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("base", "base", ""),
		Retryer:      aws.NopRetryer{},
	})
}

func TestSTSAssumeRole(t *testing.T) {
	p, err := proxy.Start(proxy.Config{KinesisURL: "http://127.0.0.1:1", STS: &proxy.STSConfig{
		Roles:    map[string]proxy.STSRole{testRole: {ExternalID: "ext", AccessKeyID: "ASIAROLE"}},
		Duration: 20 * time.Minute,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()

	prov := stscreds.NewAssumeRoleProvider(stsClient(p), testRole, func(o *stscreds.AssumeRoleOptions) {
		o.ExternalID = aws.String("ext")
	})
	c, err := prov.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "ASIAROLE" || c.SessionToken == "" || !c.CanExpire ||
		c.Expires.Before(time.Now().Add(19*time.Minute)) || c.Expires.After(time.Now().Add(21*time.Minute)) {
		t.Errorf("credentials %+v", c)
	}
	if p.AssumeRoleCalls() != 1 || p.Stats().Calls["STS.AssumeRole"] != 1 {
		t.Errorf("calls %d %v", p.AssumeRoleCalls(), p.Stats().Calls)
	}

	for name, opt := range map[string]func(*stscreds.AssumeRoleOptions){
		"wrong external ID": func(o *stscreds.AssumeRoleOptions) { o.ExternalID = aws.String("other") },
		"no external ID":    func(*stscreds.AssumeRoleOptions) {},
	} {
		_, err := stscreds.NewAssumeRoleProvider(stsClient(p), testRole, opt).Retrieve(ctx)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || !strings.Contains(ae.ErrorMessage(), testRole) {
			t.Errorf("%s: %v, want AccessDenied naming the role", name, err)
		}
	}
	_, err = stscreds.NewAssumeRoleProvider(stsClient(p), "arn:aws:iam::123456789012:role/unknown").Retrieve(ctx)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Errorf("unknown role: %v", err)
	}
}

func TestSTSOffByDefault(t *testing.T) {
	p, err := proxy.Start(proxy.Config{KinesisURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = stscreds.NewAssumeRoleProvider(stsClient(p), testRole).Retrieve(context.Background())
	if err == nil {
		t.Fatal("AssumeRole answered without Config.STS")
	}
}

func TestRequireAccessKey(t *testing.T) {
	ep := testenv.Require(t)
	client, stream := testenv.NewStream(t, 1)
	_ = client
	p := proxy.StartForTest(t, proxy.Config{KinesisURL: ep.Kinesis, RequireAccessKey: map[string]string{stream: "ASIAROLE"}})
	ctx := context.Background()
	put := func(akid string) error {
		c := kinesis.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *kinesis.Options) {
			o.BaseEndpoint = aws.String(p.URL())
			o.Retryer = aws.NopRetryer{}
			o.Credentials = credentials.NewStaticCredentialsProvider(akid, "secret", "token")
		})
		_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("x")})
		return err
	}
	err := put("test")
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" || !strings.Contains(ae.ErrorMessage(), "test") {
		t.Fatalf("signed with another key: %v, want AccessDeniedException", err)
	}
	if err := put("ASIAROLE"); err != nil {
		t.Fatalf("signed with the required key: %v", err)
	}
	if p.AccessDenied() != 1 {
		t.Errorf("AccessDenied() = %d, want 1", p.AccessDenied())
	}
}
