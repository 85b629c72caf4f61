// Package sigv4 verifies AWS Signature Version 4 on incoming requests, so
// unmodified AWS SDKs and the AWS CLI can authenticate against efsd.
//
// It is written from the SigV4 specification and checked against two
// independent signers (aws-sdk-go-v2 and botocore) in the tests.
package sigv4

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"
	terminator      = "aws4_request"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	maxExpires      = 7 * 24 * 60 * 60 // AWS caps presigned URLs at one week
)

// Lookup returns the secret for an access key; ok=false when the key is unknown.
type Lookup func(accessKey string) (secret string, ok bool)

// Verifier checks SigV4 signatures for one service.
type Verifier struct {
	Service string           // expected service in the credential scope, e.g. "elasticfilesystem"
	Lookup  Lookup           // nil means no key is known
	Now     func() time.Time // injected clock; nil → time.Now
	MaxSkew time.Duration    // 0 → 15 * time.Minute
}

// Identity is what a verified request proves.
type Identity struct {
	AccessKey, Region, Service string
	Time                       time.Time // signing time
}

// Error is returned for every authentication failure; Code is AWS's error
// code, Status its HTTP status. Messages never contain secrets or signatures.
type Error struct {
	Code    string
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func incomplete(format string, args ...any) *Error {
	return &Error{"IncompleteSignatureException", http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return &Error{"InvalidSignatureException", http.StatusForbidden, fmt.Sprintf(format, args...)}
}

// mismatch is fresh per call so callers cannot alter a shared value.
func mismatch() *Error {
	return invalid("The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
}

// authParams is what the Authorization header or presigned query claims.
type authParams struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...",
// accepting the components in any order and with or without spaces after commas.
func parseAuthorization(h string) (authParams, error) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != algorithm {
		return authParams{}, incomplete("Unsupported AWS 'algorithm': only %s is supported.", algorithm)
	}
	kv := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return authParams{}, incomplete("Invalid key=value pair (missing equal-sign) in Authorization header.")
		}
		k = strings.TrimSpace(k)
		if _, dup := kv[k]; dup {
			return authParams{}, incomplete("Authorization header has a duplicate '%s' parameter.", k)
		}
		kv[k] = strings.TrimSpace(v)
	}
	var missing []string
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if kv[k] == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", k))
		}
	}
	if len(missing) > 0 {
		return authParams{}, incomplete("%s", strings.Join(missing, " "))
	}
	return newAuthParams(kv["Credential"], kv["SignedHeaders"], kv["Signature"])
}

// parsePresigned reads the X-Amz-* query parameters of a presigned URL.
func parsePresigned(q url.Values) (p authParams, t time.Time, expires time.Duration, err error) {
	if a := q.Get("X-Amz-Algorithm"); a != algorithm {
		return p, t, 0, incomplete("Unsupported AWS 'algorithm': only %s is supported.", algorithm)
	}
	var missing []string
	for _, k := range []string{"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if q.Get(k) == "" {
			missing = append(missing, fmt.Sprintf("AWS query-string parameters must include '%s'.", k))
		}
	}
	if len(missing) > 0 {
		return p, t, 0, incomplete("%s Re-examine the query-string parameters.", strings.Join(missing, " "))
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	switch {
	case err != nil || secs < 0:
		return p, t, 0, incomplete("X-Amz-Expires must be a non-negative integer.")
	case secs > maxExpires:
		return p, t, 0, incomplete("X-Amz-Expires must be less than a week (in seconds) that is %d.", maxExpires)
	}
	if t, err = parseAmzDate(q.Get("X-Amz-Date")); err != nil {
		return p, t, 0, err
	}
	p, err = newAuthParams(q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature"))
	return p, t, time.Duration(secs) * time.Second, err
}

// newAuthParams splits "AK/date/region/service/aws4_request" and "a;b;c".
func newAuthParams(credential, signedHeaders, signature string) (authParams, error) {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[0] == "" {
		return authParams{}, incomplete("Credential should have 5 slash-separated parts: <access key>/<date>/<region>/<service>/%s.", terminator)
	}
	p := authParams{accessKey: parts[0], date: parts[1], region: parts[2], service: parts[3], signature: signature}
	switch {
	case parts[2] == "":
		return authParams{}, incomplete("Credential should be scoped to a valid region.")
	case parts[4] != terminator:
		return authParams{}, incomplete("Credential should be scoped with a valid terminator: '%s'.", terminator)
	}
	for name := range strings.SplitSeq(strings.ToLower(signedHeaders), ";") {
		if name = strings.TrimSpace(name); name == "" {
			return authParams{}, incomplete("SignedHeaders contains an empty header name.")
		}
		p.signedHeaders = append(p.signedHeaders, name)
	}
	return p, nil
}

func parseAmzDate(s string) (time.Time, error) {
	t, err := time.Parse(amzDateFormat, s)
	if err != nil {
		return t, incomplete("Date must be in ISO-8601 'basic format'. Got '%.32s'.", s)
	}
	return t, nil
}

// headerDate reads X-Amz-Date, falling back to Date (which AWS accepts in
// ISO-8601 basic or RFC 1123 form; botocore writes "-0000" for the zone).
func headerDate(r *http.Request) (time.Time, error) {
	if s := r.Header.Get("X-Amz-Date"); s != "" {
		return parseAmzDate(s)
	}
	s := r.Header.Get("Date")
	if s == "" {
		return time.Time{}, incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	for _, layout := range []string{amzDateFormat, time.RFC1123, time.RFC1123Z} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, incomplete("Date header could not be parsed. Got '%.40s'.", s)
}

// Verify checks r's signature. body is the full request body (already read
// by the caller; r.Body is not touched). Every failure is an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (Identity, error) {
	c, err := v.Begin(r)
	if err != nil {
		return Identity{}, err
	}
	return c.Finish(sha256.Sum256(body))
}

// Pending is a request whose authentication was checked as far as its
// headers allow: the Authorization (or presigned query) is well formed, the
// access key is known, the scope names this service and the date is within
// the window. When the client sent the payload hash in X-Amz-Content-Sha256
// the signature itself is checked too. Finish completes the check once the
// body has been read and hashed.
type Pending struct {
	r         *http.Request
	p         authParams
	t         time.Time
	secret    string
	claim     string // the client's payload hash claim; "" when it sent none
	signed    bool   // the signature was verified against claim
	presigned bool
}

// Claimed is the identity the request claims; it is proven only once Finish
// returns nil, so it may name a region to refuse early but grants nothing.
func (c *Pending) Claimed() Identity {
	return Identity{AccessKey: c.p.accessKey, Region: c.p.region, Service: c.p.service, Time: c.t}
}

// Begin checks everything about r that does not need its body, so a server
// can refuse a request before reading (and holding) the body. Every failure
// is an *Error.
func (v *Verifier) Begin(r *http.Request) (*Pending, error) {
	var (
		p         authParams
		t         time.Time
		expires   time.Duration
		err       error
		auth      = r.Header.Values("Authorization")
		q         = r.URL.Query()
		presigned = q.Has("X-Amz-Algorithm")
	)
	switch {
	case len(auth) > 0 && presigned:
		return nil, incomplete("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case len(auth) > 1:
		return nil, incomplete("Only one Authorization header allowed.")
	case len(auth) == 1:
		if p, err = parseAuthorization(auth[0]); err == nil {
			t, err = headerDate(r)
		}
	case presigned:
		p, t, expires, err = parsePresigned(q)
	default:
		return nil, &Error{"MissingAuthenticationTokenException", http.StatusForbidden, "Missing Authentication Token"}
	}
	if err != nil {
		return nil, err
	}
	if p.service != v.Service {
		return nil, incomplete("Credential should be scoped to correct service: '%s'.", v.Service)
	}
	if d := t.Format(scopeDateFormat); p.date != d {
		return nil, incomplete("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%.8s' != '%s', from '%s'.", p.date, d, t.Format(amzDateFormat))
	}
	if !slices.Contains(p.signedHeaders, "host") {
		return nil, incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if err := v.checkTime(t, expires, presigned); err != nil {
		return nil, err
	}
	secret, ok := "", false
	if v.Lookup != nil {
		secret, ok = v.Lookup(p.accessKey)
	}
	if !ok {
		return nil, &Error{"UnrecognizedClientException", http.StatusForbidden, "The security token included in the request is invalid."}
	}
	c := &Pending{r: r, p: p, t: t, secret: secret, presigned: presigned}
	c.claim = r.Header.Get("X-Amz-Content-Sha256")
	if c.claim == "" && presigned {
		c.claim = q.Get("X-Amz-Content-Sha256")
	}
	switch {
	case c.claim == "":
		return c, nil
	case c.claim != unsignedPayload && !isHexSHA256(c.claim):
		return nil, invalid("x-amz-content-sha256 must be %s or the hex SHA-256 of the body.", unsignedPayload)
	}
	// The payload hash is claimed, so the whole signature can be checked
	// now; the body is later held to the claim.
	if err := c.check(c.claim); err != nil {
		return nil, err
	}
	c.signed = true
	return c, nil
}

// Finish completes the check with the SHA-256 of the whole body.
func (c *Pending) Finish(bodySum [sha256.Size]byte) (Identity, error) {
	actual := hex.EncodeToString(bodySum[:])
	switch {
	case c.claim == unsignedPayload:
	case c.claim != "":
		if !strings.EqualFold(c.claim, actual) {
			return Identity{}, invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	default:
		if err := c.check(actual); err != nil {
			return Identity{}, err
		}
	}
	return c.Claimed(), nil
}

// check computes the signature with the given payload hash and compares it
// with the client's.
func (c *Pending) check(hash string) error {
	r, p := c.r, c.p
	// Everything but the path is fixed; botocore signs the path after
	// removing dot segments and empty segments, aws-sdk-go-v2 signs it as
	// sent, so a request verifies if either form matches.
	rest := "\n" + canonicalQuery(r.URL.RawQuery, c.presigned) + "\n" +
		canonicalHeaders(r, p.signedHeaders) + "\n" +
		strings.Join(p.signedHeaders, ";") + "\n" + hash
	scope := p.date + "/" + p.region + "/" + p.service + "/" + terminator
	key := signingKey(c.secret, p.date, p.region, p.service)
	amzDate := c.t.Format(amzDateFormat)
	path := r.URL.EscapedPath()
	for i, candidate := range []string{path, removeDotSegments(path)} {
		if i > 0 && candidate == path {
			break
		}
		cr := r.Method + "\n" + uriEncode(candidate, false) + rest
		crHash := sha256.Sum256([]byte(cr))
		sts := algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
		want := hex.EncodeToString(hmacSHA256(key, sts))
		if subtle.ConstantTimeCompare([]byte(want), []byte(p.signature)) == 1 {
			return nil
		}
	}
	return mismatch()
}

func isHexSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkTime enforces clock skew in both directions, and for presigned URLs
// the expiry instead of the past skew (that is what X-Amz-Expires is for).
func (v *Verifier) checkTime(t time.Time, expires time.Duration, presigned bool) error {
	now, skew := time.Now, v.MaxSkew
	if v.Now != nil {
		now = v.Now
	}
	if skew <= 0 {
		skew = 15 * time.Minute
	}
	n := now().UTC()
	f := func(t time.Time) string { return t.UTC().Format(amzDateFormat) }
	switch {
	case t.Sub(n) > skew:
		return invalid("Signature not yet current: %s is still later than %s (%s + %g min.)", f(t), f(n.Add(skew)), f(n), skew.Minutes())
	case presigned && n.After(t.Add(expires)):
		return invalid("Signature expired: %s is now earlier than %s (%s - %d sec.)", f(t), f(n.Add(-expires)), f(n), int(expires.Seconds()))
	case !presigned && n.Sub(t) > skew:
		return invalid("Signature expired: %s is now earlier than %s (%s - %g min.)", f(t), f(n.Add(-skew)), f(n), skew.Minutes())
	}
	return nil
}

// canonicalHeaders renders exactly the client's signed headers. net/http
// moves Host into r.Host and may keep Content-Length only in r.ContentLength.
func canonicalHeaders(r *http.Request, names []string) string {
	var b strings.Builder
	for _, name := range names {
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
			if r.Host == "" {
				values = []string{r.URL.Host}
			}
		case "content-length":
			if values = r.Header.Values("Content-Length"); len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		default:
			values = r.Header.Values(name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.Join(strings.Fields(v), " "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// canonicalQuery re-encodes the raw query the SigV4 way (space as %20) and
// sorts it by encoded key, then value; presigned URLs drop X-Amz-Signature.
func canonicalQuery(raw string, presigned bool) string {
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, pair{uriEncode(k, true), uriEncode(v, true)})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(strings.Compare(a.k, b.k), strings.Compare(a.v, b.v))
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k + "=" + p.v)
	}
	return b.String()
}

// uriEncode percent-encodes everything but A-Z a-z 0-9 - _ . ~ (and '/'
// unless encodeSlash). Applied to an already-escaped path it yields the
// double encoding non-S3 services sign.
func uriEncode(s string, encodeSlash bool) string {
	if s == "" && !encodeSlash {
		return "/"
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// removeDotSegments mirrors botocore's normalize_url_path: RFC 3986 dot
// segment removal plus collapsing empty segments, on the escaped path.
func removeDotSegments(p string) string {
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	res := "/" + strings.Join(out, "/")
	if strings.HasSuffix(p, "/") && len(out) > 0 {
		res += "/"
	}
	return res
}

// signingKey derives the per-day, per-region, per-service key.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// ClaimedService returns the service named in r's credential scope (from
// the Authorization header or a presigned URL's X-Amz-Credential), or ""
// when r carries no well-formed one. It proves nothing: a server that
// speaks for several services uses it only to pick the Verifier (and the
// protocol) that then checks the request.
func ClaimedService(r *http.Request) string {
	var (
		p   authParams
		err error
	)
	if auth := r.Header.Values("Authorization"); len(auth) == 1 {
		p, err = parseAuthorization(auth[0])
	} else if q := r.URL.Query(); len(auth) == 0 && q.Has("X-Amz-Credential") {
		p, _, _, err = parsePresigned(q)
	} else {
		return ""
	}
	if err != nil {
		return ""
	}
	return p.service
}
