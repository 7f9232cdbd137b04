package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/spf13/cobra"
)

// app holds what every command shares: the streams it writes to, the global
// flags, and the AWS clients, built on first use.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	profile  string
	region   string
	endpoint string
	json     bool

	cfg      *aws.Config
	kinesis  *kinesis.Client
	dynamodb *dynamodb.Client
}

// run executes kinesisctl with args (without the program name) and returns
// the process exit code. It is the whole program, so tests run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Errors that did not come out of a command's own code are cobra's:
		// unknown command or flag, wrong number of arguments.
		ee = usageErr("%v", err)
	}
	fmt.Fprintf(stderr, "kinesisctl: %s\n", redact(ee.msg))
	if ee.code == exitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ee.code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kinesisctl",
		Short: "Inspect and steer Kinesis data streams and kcl lease tables",
		Long: `kinesisctl inspects and steers Kinesis data streams and the lease tables of kcl
applications.

It reads the standard AWS configuration: --profile or AWS_PROFILE, --region or
AWS_REGION, and endpoints from --endpoint-url, AWS_ENDPOINT_URL_KINESIS,
AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL. When every configured endpoint
is on loopback (local emulators, LocalStack) and no credentials are
configured, requests are signed with dummy credentials.

Exit codes: 0 ok, 1 other failure (also: malformed lease items), 2 usage or
malformed value, 3 not found (also: not a lease table),
4 AWS configuration (credentials, region, access denied), 5 endpoint
unreachable, 6 conflict (exists, busy, closed shard, limit), 7 put incomplete,
130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return a.checkEndpoints() }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	pf := root.PersistentFlags()
	pf.StringVar(&a.profile, "profile", "", "AWS profile from the shared config (default: AWS_PROFILE, else default)")
	pf.StringVar(&a.region, "region", "", "AWS region (default: AWS_REGION or the profile's; us-east-1 for local endpoints)")
	pf.StringVar(&a.endpoint, "endpoint-url", "", "endpoint for both Kinesis and DynamoDB, overriding AWS_ENDPOINT_URL*")
	pf.BoolVar(&a.json, "json", false, "print JSON instead of tables")

	root.AddCommand(a.streamCommand(), a.shardsCommand(), a.splitCommand(), a.mergeCommand(), a.scaleCommand(),
		a.putCommand(), a.tailCommand(), a.leasesCommand(), a.lagCommand(), a.consumersCommand(), a.autoscaleCommand())
	return root
}

// runE adapts a command's function so that whatever error it returns is
// classified into an exitError (see classify); cobra's own errors are not,
// which is how run tells usage errors apart.
func (a *app) runE(service string, fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		return classify(err, a.endpointDescription(service))
	}
}

// args validates the number of positional arguments, naming them in the
// error.
func args(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, got []string) error {
		if len(got) != len(names) {
			return usageErr("want %d argument(s): %s; got %d", len(names), strings.Join(names, " "), len(got))
		}
		return nil
	}
}

// endpointFor returns the endpoint configured for a service ("KINESIS" or
// "DYNAMODB"), or "" when the SDK's default for the region applies.
func (a *app) endpointFor(service string) string {
	if a.endpoint != "" {
		return a.endpoint
	}
	if v := os.Getenv("AWS_ENDPOINT_URL_" + service); v != "" {
		return v
	}
	return os.Getenv("AWS_ENDPOINT_URL")
}

func (a *app) endpointDescription(service string) string {
	if ep := a.endpointFor(service); ep != "" {
		return ep
	}
	name := strings.ToLower(service)
	region := a.region
	if a.cfg != nil {
		region = a.cfg.Region
	}
	if region == "" {
		return "the AWS " + name + " endpoint"
	}
	return fmt.Sprintf("https://%s.%s.amazonaws.com", name, region)
}

// checkEndpoints rejects a malformed endpoint before any call: --endpoint-url,
// or without it each AWS_ENDPOINT_URL* variable that is set.
func (a *app) checkEndpoints() error {
	if a.endpoint != "" {
		return checkEndpoint("--endpoint-url", a.endpoint)
	}
	for _, v := range []string{"AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"} {
		if ep := os.Getenv(v); ep != "" {
			if err := checkEndpoint(v, ep); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkEndpoint checks that endpoint, given by source, is an http or https
// URL with a host.
func checkEndpoint(source, endpoint string) error {
	const want = "want a URL such as https://kinesis.us-east-1.amazonaws.com or http://127.0.0.1:4568"
	u, err := url.Parse(endpoint)
	var urlErr *url.Error
	switch {
	case errors.As(err, &urlErr):
		// url.Error quotes the URL; the value is quoted below, redacted.
		return usageErr("bad %s %q: %v; %s", source, endpoint, urlErr.Err, want)
	case err != nil:
		return usageErr("bad %s %q: %v; %s", source, endpoint, err, want)
	case u.Scheme != "http" && u.Scheme != "https":
		return usageErr("bad %s %q: not an http:// or https:// URL; %s", source, endpoint, want)
	case u.Host == "" || u.Opaque != "":
		return usageErr("bad %s %q: no host; %s", source, endpoint, want)
	}
	return nil
}

// regionPattern is what AWS accepts as a region: a DNS label, as the region
// becomes part of the endpoint's host name.
var regionPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// isLocal reports whether endpoint names a loopback host.
func isLocal(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// local reports whether kinesisctl talks to local endpoints only.
func (a *app) local() bool {
	k, d := a.endpointFor("KINESIS"), a.endpointFor("DYNAMODB")
	if k == "" && d == "" {
		return false
	}
	return (k == "" || isLocal(k)) && (d == "" || isLocal(d))
}

// awsConfig loads the standard AWS configuration once and checks that it
// has a region and credentials, so that a missing one is reported as such
// rather than as a failed call.
func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	local := a.local()
	var opts []func(*config.LoadOptions) error
	if a.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.profile))
	}
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	if local {
		// No instance metadata lookups for an emulator on this machine.
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var noProfile config.SharedConfigProfileNotExistError
		if errors.As(err, &noProfile) {
			return aws.Config{}, fail(exitConfig, err, "AWS profile %q not found in the shared config files; list profiles with: aws configure list-profiles", noProfile.Profile)
		}
		return aws.Config{}, fail(exitConfig, err, "loading the AWS configuration: %v", err)
	}
	if cfg.Region != "" && !regionPattern.MatchString(cfg.Region) {
		source := "--region"
		if a.region == "" {
			source = "region (from AWS_REGION or the profile)"
		}
		return aws.Config{}, usageErr("bad %s %q: want a region name such as us-east-1", source, cfg.Region)
	}
	if cfg.Region == "" {
		if !local {
			return aws.Config{}, fail(exitConfig, nil, "no AWS region configured: pass --region, set AWS_REGION, or set region in the profile (aws configure)")
		}
		cfg.Region = "us-east-1"
	}
	if err := checkCredentials(ctx, &cfg); err != nil {
		if !local {
			return aws.Config{}, fail(exitConfig, err,
				"no AWS credentials found (%v)\nset AWS_PROFILE or pass --profile, export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run: aws configure", err)
		}
		// Local emulators accept any signature.
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("local", "local", ""))
	}
	a.cfg = &cfg
	return cfg, nil
}

func checkCredentials(ctx context.Context, cfg *aws.Config) error {
	if cfg.Credentials == nil {
		return errors.New("no credential provider")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := cfg.Credentials.Retrieve(ctx)
	return err
}

func (a *app) kinesisClient(ctx context.Context) (*kinesis.Client, error) {
	if a.kinesis != nil {
		return a.kinesis, nil
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	a.kinesis = kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if a.endpoint != "" {
			o.BaseEndpoint = aws.String(a.endpoint)
		}
	})
	return a.kinesis, nil
}

func (a *app) dynamodbClient(ctx context.Context) (*dynamodb.Client, error) {
	if a.dynamodb != nil {
		return a.dynamodb, nil
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	a.dynamodb = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if a.endpoint != "" {
			o.BaseEndpoint = aws.String(a.endpoint)
		}
	})
	return a.dynamodb, nil
}

// emit prints v as indented JSON with --json, else calls human.
func (a *app) emit(v any, human func(w io.Writer) error) error {
	if a.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return human(a.stdout)
}
