package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// STSConfig makes the proxy answer the AWS Security Token Service's
// AssumeRole itself, handing out temporary credentials for the roles it
// lists, so that a client's assumed-role code path runs without AWS.
type STSConfig struct {
	// Roles are the roles AssumeRole may assume, by role ARN. AssumeRole of
	// any other role is refused with AccessDenied, as STS refuses a role
	// whose trust policy does not name the caller.
	Roles map[string]STSRole
	// Duration is the lifetime of the credentials handed out. Default: the
	// request's DurationSeconds, or 3,600 s when it has none (STS's
	// default). Shorter than STS's 900 s minimum is allowed, so that tests
	// see credentials refreshed.
	Duration time.Duration
}

// STSRole is a role the STS stand-in lets callers assume.
type STSRole struct {
	// ExternalID, when set, must be the request's ExternalId (else
	// AccessDenied), as for a role whose trust policy has an
	// sts:ExternalId condition.
	ExternalID string
	// AccessKeyID is the access key ID of the credentials handed out for
	// the role; with Config.RequireAccessKey it proves that a client signs
	// with them. Default: "ASIA" and 16 characters derived from the ARN.
	AccessKeyID string
}

// Validate reports the first thing wrong with c.
func (c *STSConfig) Validate() error {
	if c.Duration < 0 {
		return fmt.Errorf("proxy: STS.Duration is %v, want >= 0", c.Duration)
	}
	for arn := range c.Roles {
		if !strings.HasPrefix(arn, "arn:") {
			return fmt.Errorf("proxy: STS.Roles: %q is not an ARN", arn)
		}
	}
	return nil
}

// stsNamespace is the XML namespace of STS's query-protocol responses.
const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// identities counts the credentials the STS stand-in issued and the calls
// Config.RequireAccessKey refused.
type identities struct {
	issued atomic.Int64
	denied atomic.Int64
	mu     sync.Mutex
	serial map[string]int // per role: how many credentials issued
}

// countCall counts a call in Stats.Calls under key ("Service.Operation").
func (c *counters) countCall(key string) {
	n, ok := c.calls.Load(key)
	if !ok {
		n, _ = c.calls.LoadOrStore(key, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(1)
}

// isSTS reports whether r is an STS query-protocol request: a form-encoded
// POST signed for service "sts" (the SDKs sign STS calls so) or carrying
// an STS Action.
func isSTS(r *http.Request) bool {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return false
	}
	return strings.Contains(r.Header.Get("Authorization"), "/sts/aws4_request")
}

// AssumeRoleCalls returns how many credentials the STS stand-in has issued.
func (p *Proxy) AssumeRoleCalls() int64 { return p.ids.issued.Load() }

// AccessDenied returns how many calls Config.RequireAccessKey refused.
func (p *Proxy) AccessDenied() int64 { return p.ids.denied.Load() }

// serveSTS answers one STS request.
func (p *Proxy) serveSTS(w http.ResponseWriter, r *http.Request) {
	p.stats.requests.Add(1)
	if err := r.ParseForm(); err != nil {
		p.stats.badRequests.Add(1)
		writeSTSError(w, http.StatusBadRequest, "Sender", "MalformedInput", "proxy: "+err.Error())
		return
	}
	action := r.PostForm.Get("Action")
	p.stats.countCall("STS." + action)
	if action != "AssumeRole" {
		p.stats.badRequests.Add(1)
		writeSTSError(w, http.StatusBadRequest, "Sender", "InvalidAction",
			fmt.Sprintf("proxy: the STS stand-in answers AssumeRole only, not %q", action))
		return
	}
	arn, session := r.PostForm.Get("RoleArn"), r.PostForm.Get("RoleSessionName")
	if arn == "" || session == "" {
		p.stats.badRequests.Add(1)
		writeSTSError(w, http.StatusBadRequest, "Sender", "ValidationError", "RoleArn and RoleSessionName are required")
		return
	}
	caller := accessKeyID(r.Header)
	role, ok := p.cfg.STS.Roles[arn]
	if !ok || (role.ExternalID != "" && role.ExternalID != r.PostForm.Get("ExternalId")) {
		writeSTSError(w, http.StatusForbidden, "Sender", "AccessDenied",
			fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller, arn))
		return
	}
	d := p.cfg.STS.Duration
	if d == 0 {
		d = time.Hour
		if s := r.PostForm.Get("DurationSeconds"); s != "" {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				d = time.Duration(n) * time.Second
			}
		}
	}
	akid := role.AccessKeyID
	if akid == "" {
		akid = defaultRoleKey(arn)
	}
	p.ids.mu.Lock()
	if p.ids.serial == nil {
		p.ids.serial = map[string]int{}
	}
	p.ids.serial[arn]++
	n := p.ids.serial[arn]
	p.ids.mu.Unlock()
	p.ids.issued.Add(1)

	type creds struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	type user struct {
		Arn           string `xml:"Arn"`
		AssumedRoleID string `xml:"AssumedRoleId"`
	}
	roleName := arn[strings.LastIndex(arn, "/")+1:]
	account := ""
	if parts := strings.Split(arn, ":"); len(parts) > 4 {
		account = parts[4]
	}
	body := struct {
		XMLName xml.Name `xml:"AssumeRoleResponse"`
		NS      string   `xml:"xmlns,attr"`
		Result  struct {
			Credentials      creds `xml:"Credentials"`
			AssumedRoleUser  user  `xml:"AssumedRoleUser"`
			PackedPolicySize int   `xml:"PackedPolicySize"`
		} `xml:"AssumeRoleResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}{NS: stsNamespace, RequestID: requestID()}
	body.Result.Credentials = creds{
		AccessKeyID:     akid,
		SecretAccessKey: "proxy-secret-" + strconv.Itoa(n),
		SessionToken:    "proxy-session-" + akid + "-" + strconv.Itoa(n),
		Expiration:      p.cfg.Now().Add(d).UTC().Format(time.RFC3339),
	}
	body.Result.AssumedRoleUser = user{
		Arn:           "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + session,
		AssumedRoleID: "AROA" + akid[min(4, len(akid)):] + ":" + session,
	}
	b, _ := xml.Marshal(body)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", body.RequestID)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// defaultRoleKey derives a role's access key ID from its ARN: "ASIA" (the
// prefix of temporary credentials) and 16 upper-case hex digits.
func defaultRoleKey(arn string) string {
	sum := sha256.Sum256([]byte(arn))
	return "ASIA" + strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// writeSTSError sends an error in the shape of STS's query protocol.
func writeSTSError(w http.ResponseWriter, status int, typ, code, message string) {
	body := struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		NS      string   `xml:"xmlns,attr"`
		Error   struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
		RequestID string `xml:"RequestId"`
	}{NS: stsNamespace, RequestID: requestID()}
	body.Error.Type, body.Error.Code, body.Error.Message = typ, code, message
	b, _ := xml.Marshal(body)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// accessKeyID returns the access key ID of a SigV4 Authorization header,
// or "" when there is none.
func accessKeyID(h http.Header) string {
	auth := h.Get("Authorization")
	i := strings.Index(auth, "Credential=")
	if i < 0 {
		return ""
	}
	cred := auth[i+len("Credential="):]
	if j := strings.IndexByte(cred, '/'); j >= 0 {
		return cred[:j]
	}
	return ""
}

// checkAccessKey applies Config.RequireAccessKey to a call naming the
// stream or delivery stream name: nil when allowed, else the
// AccessDeniedException AWS answers a caller without permission on it.
func (p *Proxy) checkAccessKey(h http.Header, name, action string) *awsError {
	want, ok := p.cfg.RequireAccessKey[name]
	if !ok {
		return nil
	}
	if got := accessKeyID(h); got != want {
		p.ids.denied.Add(1)
		return &awsError{status: http.StatusBadRequest, code: codeAccessDenied,
			message: fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s", got, action, name)}
	}
	return nil
}

// codeAccessDenied is the error code of a call the caller's identity may
// not make.
const codeAccessDenied = "AccessDeniedException"
