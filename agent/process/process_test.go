package process

import (
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/agent/config"
)

func apply(t *testing.T, opts []config.Option, in string) (string, error) {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Now = func() time.Time { return time.Date(2024, 3, 5, 10, 11, 12, 345e6, time.UTC) }
	out, err := c.Apply([]byte(in))
	return string(out), err
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []config.Option
		in   string
		want string
	}{
		{"singleline", []config.Option{{Name: config.OptSingleLine}},
			"java.lang.Exception: boom\n\tat com.x.Y.run(Y.java:10)\n   at com.x.Z.main(Z.java:3)  \n",
			"java.lang.Exception: boomat com.x.Y.run(Y.java:10)at com.x.Z.main(Z.java:3)\n"},
		{"csv", []config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"id", "name", "note"}, Delimiter: ","}},
			"42,\"Smith, Jane\",\"said \"\"hi\"\"\"\n", `{"id":"42","name":"Smith, Jane","note":"said \"hi\""}` + "\n"},
		{"csv tab short row", []config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"a", "b", "c"}, Delimiter: "\t"}},
			"1\t2\n", `{"a":"1","b":"2","c":null}` + "\n"},
		{"common apache", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatCommonApache}},
			`64.242.88.10 - - [07/Mar/2004:16:10:02 -0800] "GET /mailman/listinfo/hsdivision HTTP/1.1" 200 6291` + "\n",
			`{"host":"64.242.88.10","ident":null,"authuser":null,"datetime":"07/Mar/2004:16:10:02 -0800","request":"GET /mailman/listinfo/hsdivision HTTP/1.1","response":"200","bytes":"6291"}` + "\n"},
		{"combined apache", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatCombinedApache}},
			`127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"` + "\n",
			`{"host":"127.0.0.1","ident":null,"authuser":"frank","datetime":"10/Oct/2000:13:55:36 -0700","request":"GET /apache_pb.gif HTTP/1.0","response":"200","bytes":"2326","referer":"http://www.example.com/start.html","agent":"Mozilla/4.08 [en] (Win98; I ;Nav)"}` + "\n"},
		{"apache error", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatApacheError}},
			`[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico` + "\n",
			`{"timestamp":"Fri Sep 09 10:42:29.902022 2011","module":"core","severity":"error","processid":"35708","threadid":"4328636416","client":"72.15.99.187","message":"File does not exist: /usr/local/apache2/htdocs/favicon.ico"}` + "\n"},
		{"apache error old style", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatApacheError}},
			`[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home/live/ap/htdocs/test` + "\n",
			`{"timestamp":"Wed Oct 11 14:32:52 2000","module":null,"severity":"error","processid":null,"threadid":null,"client":"127.0.0.1","message":"client denied by server configuration: /export/home/live/ap/htdocs/test"}` + "\n"},
		{"syslog", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatSyslog}},
			"Mar  5 10:11:12 web-1 sshd[1234]: Accepted publickey for ec2-user from 10.0.0.5 port 50000 ssh2\n",
			`{"timestamp":"Mar  5 10:11:12","hostname":"web-1","program":"sshd","processid":"1234","message":"Accepted publickey for ec2-user from 10.0.0.5 port 50000 ssh2"}` + "\n"},
		{"syslog no pid", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatSyslog}},
			"Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n",
			`{"timestamp":"Oct 11 22:14:15","hostname":"mymachine","program":"su","processid":null,"message":"'su root' failed for lonvick on /dev/pts/8"}` + "\n"},
		{"rfc3339 syslog", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatRFC3339Syslog}},
			"2024-03-05T10:11:12.123456+00:00 web-1 systemd[1]: Started Session 4 of user root.\n",
			`{"timestamp":"2024-03-05T10:11:12.123456+00:00","hostname":"web-1","program":"systemd","processid":"1","message":"Started Session 4 of user root."}` + "\n"},
		{"custom pattern", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatSyslog,
			MatchPattern: regexp.MustCompile(`^(\w+)=(\d+)$`), CustomFieldNames: []string{"key", "value"}}},
			"latency=17\n", `{"key":"latency","value":"17"}` + "\n"},
		{"renamed fields", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatRFC3339Syslog,
			CustomFieldNames: []string{"ts", "host", "app", "pid", "msg"}}},
			"2024-03-05T10:11:12Z h a: m\n", `{"ts":"2024-03-05T10:11:12Z","host":"h","app":"a","pid":null,"msg":"m"}` + "\n"},
		{"metadata on text", []config.Option{{Name: config.OptAddMetadata, Timestamp: true, Metadata: map[string]any{"env": "prod", "n": 1.0}}},
			"plain \"text\"\n", `{"metadata":{"env":"prod","n":1},"timestamp":"2024-03-05T10:11:12.345Z","data":"plain \"text\""}` + "\n"},
		{"log then metadata", []config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatSyslog, MatchPattern: regexp.MustCompile(`^(\w+)$`), CustomFieldNames: []string{"w"}},
			{Name: config.OptAddMetadata, Metadata: map[string]any{"k": "v"}}},
			"hello\n", `{"metadata":{"k":"v"},"data":{"w":"hello"}}` + "\n"},
	} {
		got, err := apply(t, tc.opts, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s:\n got %q, %v\nwant %q", tc.name, got, err, tc.want)
		}
	}
}

func TestUnparsed(t *testing.T) {
	for _, tc := range []struct {
		opts []config.Option
		in   string
	}{
		{[]config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatCommonApache}}, "not an access log line\n"},
		{[]config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatSyslog}}, "2024-03-05T10:11:12Z h a: m\n"},
		{[]config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"a"}, Delimiter: ","}}, "1,2,3\n"},
		{[]config.Option{{Name: config.OptSingleLine}, {Name: config.OptCSVToJSON, CustomFieldNames: []string{"a"}, Delimiter: ","}}, "x,y\n"},
	} {
		got, err := apply(t, tc.opts, tc.in)
		if !errors.Is(err, ErrUnparsed) || got != tc.in {
			t.Errorf("%q: got %q, %v; want the record unchanged and ErrUnparsed", tc.in, got, err)
		}
	}
}

func TestNewRejectsFieldCountMismatch(t *testing.T) {
	_, err := New([]config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatSyslog, CustomFieldNames: []string{"a"}}})
	if err == nil {
		t.Fatal("want error")
	}
}

func TestEmptyChainPassesThrough(t *testing.T) {
	c, _ := New(nil)
	out, err := c.Apply([]byte("\xffraw\n"))
	if err != nil || string(out) != "\xffraw\n" || !c.Empty() {
		t.Fatalf("%q %v", out, err)
	}
}
