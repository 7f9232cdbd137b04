package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kinesisgo/kinesis/agent/config"
)

// roleSessionName names the agent's sessions in the assumed roles'
// CloudTrail records.
const roleSessionName = "kinesis-agent"

// roleExpiryWindow is how long before their expiry assumed-role credentials
// are refreshed (STS hands them out for 15 minutes by default), so that no
// call is signed with credentials about to expire.
const roleExpiryWindow = time.Minute

// role is an assumed role: its ARN and external ID.
type role struct{ arn, externalID string }

// clients builds the AWS clients of a configuration's flows: the base
// configuration (the AWS config chain, with the file's region and static
// credentials when set), and for each role the flows assume one
// credentials provider, shared by its Kinesis and Firehose clients. The
// SDK's retries are off: the producer and the Firehose sink retry. Not safe
// for concurrent use (the agent makes its sinks one after the other).
type clients struct {
	file     *config.File
	base     aws.Config
	creds    map[role]aws.CredentialsProvider
	kinesis  map[role]*kinesis.Client
	firehose map[role]*firehose.Client
}

func newClients(file *config.File) (*clients, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if file.KinesisRegion != "" {
		opts = append(opts, awsconfig.WithRegion(file.KinesisRegion))
	}
	if file.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(file.AccessKeyID, file.SecretAccessKey, "")))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS config: %w", err)
	}
	return &clients{file: file, base: cfg, creds: map[role]aws.CredentialsProvider{},
		kinesis: map[role]*kinesis.Client{}, firehose: map[role]*firehose.Client{}}, nil
}

func flowRole(fl config.Flow) role { return role{fl.AssumeRoleARN, fl.AssumeRoleExternalID} }

// credentials returns the provider of r's credentials: the base
// configuration's for no role, else one assuming r through STS (at
// sts.endpoint when set) with the base credentials, cached and refreshed
// roleExpiryWindow before expiry.
func (c *clients) credentials(r role) aws.CredentialsProvider {
	if r.arn == "" {
		return c.base.Credentials
	}
	if p, ok := c.creds[r]; ok {
		return p
	}
	stsClient := sts.NewFromConfig(c.base, func(o *sts.Options) {
		if c.file.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.file.STSEndpoint)
		}
	})
	assume := stscreds.NewAssumeRoleProvider(stsClient, r.arn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = roleSessionName
		if r.externalID != "" {
			o.ExternalID = aws.String(r.externalID)
		}
	})
	p := aws.NewCredentialsCache(namedRole{arn: r.arn, p: assume}, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = roleExpiryWindow
	})
	c.creds[r] = p
	return p
}

// checkRole gets the credentials of a flow's role once, so that a role the
// agent may not assume stops it at start with an error naming the role.
func (c *clients) checkRole(ctx context.Context, fl config.Flow) error {
	if fl.AssumeRoleARN == "" {
		return nil
	}
	_, err := c.credentials(flowRole(fl)).Retrieve(ctx)
	return err
}

// kinesisFor returns the Kinesis client of a flow.
func (c *clients) kinesisFor(fl config.Flow) *kinesis.Client {
	r := flowRole(fl)
	if k, ok := c.kinesis[r]; ok {
		return k
	}
	k := kinesis.NewFromConfig(c.base, func(o *kinesis.Options) {
		o.Retryer = aws.NopRetryer{}
		o.Credentials = c.credentials(r)
		if c.file.KinesisEndpoint != "" {
			o.BaseEndpoint = aws.String(c.file.KinesisEndpoint)
		}
	})
	c.kinesis[r] = k
	return k
}

// firehoseFor returns the Firehose client of a flow.
func (c *clients) firehoseFor(fl config.Flow) *firehose.Client {
	r := flowRole(fl)
	if f, ok := c.firehose[r]; ok {
		return f
	}
	f := firehose.NewFromConfig(c.base, func(o *firehose.Options) {
		o.Retryer = aws.NopRetryer{}
		o.Credentials = c.credentials(r)
		if c.file.FirehoseEndpoint != "" {
			o.BaseEndpoint = aws.String(c.file.FirehoseEndpoint)
		}
	})
	c.firehose[r] = f
	return f
}

// namedRole names the role in its provider's errors.
type namedRole struct {
	arn string
	p   aws.CredentialsProvider
}

func (n namedRole) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := n.p.Retrieve(ctx)
	if err != nil {
		return c, fmt.Errorf("assuming role %s: %w", n.arn, err)
	}
	return c, nil
}
