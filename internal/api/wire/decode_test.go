package wire

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// route serves one request through a ServeMux registered from the
// operation table, as the server does, and hands back what decode returned.
func route[T any](t *testing.T, opName string, req *http.Request, body string, decode func(*http.Request, []byte) (*T, error)) (*T, error) {
	t.Helper()
	op, ok := OperationByName(opName)
	if !ok {
		t.Fatalf("no operation %s", opName)
	}
	var got *T
	var err error
	called := false
	mux := http.NewServeMux()
	for _, p := range op.Patterns() {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			called = true
			got, err = decode(r, []byte(body))
		})
	}
	mux.ServeHTTP(httptest.NewRecorder(), req)
	if !called {
		t.Fatalf("%s %s did not match %v", req.Method, req.URL, op.Patterns())
	}
	return got, err
}

const (
	fsARN        = "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123456789abcdef0"
	fsARNEncoded = "arn%3Aaws%3Aelasticfilesystem%3Aus-east-1%3A123456789012%3Afile-system%2Ffs-0123456789abcdef0"
)

func TestDecodePercentEncodedARN(t *testing.T) {
	req := httptest.NewRequest("GET", "/2015-02-01/resource-tags/"+fsARNEncoded+"?MaxResults=5&NextToken=abc", nil)
	in, err := route(t, "ListTagsForResource", req, "", DecodeListTagsForResource)
	if err != nil {
		t.Fatal(err)
	}
	if *in.ResourceId != fsARN || *in.MaxResults != 5 || *in.NextToken != "abc" {
		t.Errorf("decoded %q %d %q", *in.ResourceId, *in.MaxResults, *in.NextToken)
	}
}

func TestDecodeEncodedARNDelete(t *testing.T) {
	req := httptest.NewRequest("DELETE", "/2015-02-01/file-systems/"+fsARNEncoded, nil)
	in, err := route(t, "DeleteFileSystem", req, "", DecodeDeleteFileSystem)
	if err != nil {
		t.Fatal(err)
	}
	if *in.FileSystemId != fsARN {
		t.Errorf("FileSystemId = %q", *in.FileSystemId)
	}
}

func TestDecodeDescribeTagsTrailingSlash(t *testing.T) {
	for _, path := range []string{"/2015-02-01/tags/fs-01234567/", "/2015-02-01/tags/fs-01234567"} {
		in, err := route(t, "DescribeTags", httptest.NewRequest("GET", path+"?MaxItems=10", nil), "", DecodeDescribeTags)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if *in.FileSystemId != "fs-01234567" || *in.MaxItems != 10 {
			t.Errorf("%s: decoded %q %d", path, *in.FileSystemId, *in.MaxItems)
		}
	}
}

func TestDecodeQueryInt(t *testing.T) {
	in, err := DecodeDescribeFileSystems(httptest.NewRequest("GET", "/2015-02-01/file-systems?MaxItems=100&Marker=m&CreationToken=t", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *in.MaxItems != 100 || *in.Marker != "m" || *in.CreationToken != "t" || in.FileSystemId != nil {
		t.Errorf("decoded %+v", in)
	}

	_, err = DecodeDescribeFileSystems(httptest.NewRequest("GET", "/2015-02-01/file-systems?MaxItems=abc", nil), nil)
	want := "1 validation error detected: Value 'abc' at 'maxItems' failed to satisfy constraint: Member must be an integer"
	var ve *ValidationError
	if !errors.As(err, &ve) || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}

	// An empty value is present, so Marker's minimum length rejects it.
	_, err = DecodeDescribeFileSystems(httptest.NewRequest("GET", "/2015-02-01/file-systems?Marker=", nil), nil)
	if !errors.As(err, &ve) || ve.Violations[0].Constraint != "Member must have length greater than or equal to 1" {
		t.Errorf("empty Marker: err = %v", err)
	}
}

func TestDecodeRepeatedTagKeys(t *testing.T) {
	req := httptest.NewRequest("DELETE", "/2015-02-01/resource-tags/fs-01234567?tagKeys=a&tagKeys=b%20c&tagKeys=d", nil)
	in, err := route(t, "UntagResource", req, "", DecodeUntagResource)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(in.TagKeys, "|"); got != "a|b c|d" {
		t.Errorf("TagKeys = %q", got)
	}
	_, err = DecodeUntagResource(httptest.NewRequest("DELETE", "/x", nil), nil)
	if err == nil || !strings.Contains(err.Error(), "Value null at 'tagKeys'") || !strings.Contains(err.Error(), "Value null at 'resourceId'") {
		t.Errorf("missing tagKeys/resourceId: err = %v", err)
	}
}

func TestDecodeBody(t *testing.T) {
	body := `{"CreationToken":"tok","PerformanceMode":"maxIO","Encrypted":true,"ProvisionedThroughputInMibps":128.5,
		"Tags":[{"Key":"Name","Value":"x"}],"SomethingNew":{"a":[1,2]}}`
	in, err := DecodeCreateFileSystem(httptest.NewRequest("POST", "/2015-02-01/file-systems", nil), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if *in.CreationToken != "tok" || *in.PerformanceMode != "maxIO" || !*in.Encrypted || *in.ProvisionedThroughputInMibps != 128.5 || *in.Tags[0].Value != "x" {
		t.Errorf("decoded %+v", in)
	}
}

func TestDecodeBodyCannotOverrideURI(t *testing.T) {
	req := httptest.NewRequest("PUT", "/2015-02-01/file-systems/fs-01234567", nil)
	in, err := route(t, "UpdateFileSystem", req, `{"FileSystemId":"fs-99999999","ThroughputMode":"elastic"}`, DecodeUpdateFileSystem)
	if err != nil {
		t.Fatal(err)
	}
	if *in.FileSystemId != "fs-01234567" || *in.ThroughputMode != "elastic" {
		t.Errorf("decoded %q %q", *in.FileSystemId, *in.ThroughputMode)
	}
}

func TestDecodeErrors(t *testing.T) {
	req := httptest.NewRequest("POST", "/2015-02-01/file-systems", nil)
	tests := []struct{ name, body, member, msg string }{
		{"malformed", `{"CreationToken":`, "", "not valid JSON"},
		{"not an object", `["CreationToken"]`, "", "must be a JSON object"},
		{"wrong scalar type", `{"CreationToken":"t","Encrypted":"yes"}`, "Encrypted", "member Encrypted has the wrong type"},
		{"wrong nested type", `{"CreationToken":"t","Tags":[{"Key":1}]}`, "Tags.Key", "member Tags.Key has the wrong type"},
		{"fractional integer", `{"ClientToken":"c","FileSystemId":"fs-01234567","PosixUser":{"Uid":1.5,"Gid":1}}`, "PosixUser.Uid", "want an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.name == "fractional integer" {
				_, err = DecodeCreateAccessPoint(req, []byte(tt.body))
			} else {
				_, err = DecodeCreateFileSystem(req, []byte(tt.body))
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %T %v, want *DecodeError", err, err)
			}
			if de.Member != tt.member || !strings.Contains(de.Error(), tt.msg) {
				t.Errorf("DecodeError{Member: %q, Msg: %q}, want member %q containing %q", de.Member, de.Msg, tt.member, tt.msg)
			}
		})
	}
}

func TestDecodeTimestampWrongType(t *testing.T) {
	var d ReplicationConfigurationDescription
	err := decodeBody([]byte(`{"CreationTime":"2022-01-06T18:38:12Z"}`), &d)
	var de *DecodeError
	if !errors.As(err, &de) || !strings.Contains(de.Error(), "epoch seconds") {
		t.Errorf("err = %v, want a DecodeError naming epoch seconds", err)
	}
}
