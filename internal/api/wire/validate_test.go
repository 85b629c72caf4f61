package wire

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// violationsOf runs Validate and returns the violations, failing the test if
// the error is not a *ValidationError.
func violationsOf(t *testing.T, v interface{ Validate() error }) []Violation {
	t.Helper()
	err := v.Validate()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate() error %T %v, want *ValidationError", err, err)
	}
	return ve.Violations
}

func TestValidateMessages(t *testing.T) {
	fsPattern := `^(arn:aws[-a-z]*:elasticfilesystem:[0-9a-z-:]+:file-system/fs-[0-9a-f]{8,40}|fs-[0-9a-f]{8,40})$`
	tests := []struct {
		name string
		in   interface{ Validate() error }
		want string // exact Error() text
	}{{
		name: "bad file system id",
		in:   &CreateReplicationConfigurationRequest{SourceFileSystemId: ptr("not-an-id"), Destinations: []DestinationToCreate{}},
		want: "1 validation error detected: Value 'not-an-id' at 'sourceFileSystemId' failed to satisfy constraint: Member must satisfy regular expression pattern: " + fsPattern,
	}, {
		name: "three violations",
		in:   &CreateFileSystemRequest{PerformanceMode: ptr("fast"), ProvisionedThroughputInMibps: ptr(0.5)},
		want: "3 validation errors detected: Value null at 'creationToken' failed to satisfy constraint: Member must not be null; " +
			"Value 'fast' at 'performanceMode' failed to satisfy constraint: Member must satisfy enum value set: [generalPurpose, maxIO]; " +
			"Value '0.5' at 'provisionedThroughputInMibps' failed to satisfy constraint: Member must have value greater than or equal to 1.0",
	}, {
		name: "enum",
		in:   &CreateFileSystemRequest{CreationToken: ptr("tok"), PerformanceMode: ptr("fast")},
		want: "1 validation error detected: Value 'fast' at 'performanceMode' failed to satisfy constraint: Member must satisfy enum value set: [generalPurpose, maxIO]",
	}, {
		name: "missing required",
		in:   &DeleteFileSystemRequest{},
		want: "1 validation error detected: Value null at 'fileSystemId' failed to satisfy constraint: Member must not be null",
	}, {
		name: "too long region",
		in: &CreateReplicationConfigurationRequest{SourceFileSystemId: ptr("fs-0123456789abcdef0"),
			Destinations: []DestinationToCreate{{Region: ptr(strings.Repeat("a", 100))}}},
		want: "2 validation errors detected: Value '" + strings.Repeat("a", 100) + "' at 'destinations.1.member.region' failed to satisfy constraint: Member must have length less than or equal to 64; " +
			"Value '" + strings.Repeat("a", 100) + "' at 'destinations.1.member.region' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z]{2}-((iso[a-z]{0,1}-)|(gov-)){0,1}[a-z]+-{0,1}[0-9]{0,1}$",
	}, {
		name: "nested list path",
		in: &CreateReplicationConfigurationRequest{SourceFileSystemId: ptr("fs-0123456789abcdef0"),
			Destinations: []DestinationToCreate{{Region: ptr("us-west-2")}, {Region: ptr("eu-west-1"), KmsKeyId: ptr("nope")}}},
		want: "1 validation error detected: Value 'nope' at 'destinations.2.member.kmsKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: " +
			`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[a-zA-Z0-9/_-]+|(arn:aws[-a-z]*:kms:[a-z0-9-]+:\d{12}:((key/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(key/mrk-[0-9a-f]{32})|(alias/[a-zA-Z0-9/_-]+))))$`,
	}, {
		name: "numeric max",
		in:   &PosixUser{Uid: ptr(int64(1) << 32), Gid: ptr(int64(0))},
		want: "1 validation error detected: Value '4294967296' at 'uid' failed to satisfy constraint: Member must have value less than or equal to 4294967295",
	}, {
		name: "query int min",
		in:   &DescribeFileSystemsRequest{MaxItems: ptr(int64(0))},
		want: "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Validate() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   interface{ Validate() error }
	}{
		{"nil struct", (*CreateFileSystemRequest)(nil)},
		{"create file system", &CreateFileSystemRequest{CreationToken: ptr("tok"), PerformanceMode: ptr("maxIO"),
			ProvisionedThroughputInMibps: ptr(1.0), Tags: []Tag{{Key: ptr("Name"), Value: ptr("")}}}},
		{"arn file system id", &DeleteFileSystemRequest{FileSystemId: ptr("arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123456789abcdef0")}},
		{"unicode tags", &TagResourceRequest{ResourceId: ptr("fsap-0123456789abcdef0"),
			Tags: []Tag{{Key: ptr("プロジェクト"), Value: ptr("café ünïcode 数据 ٣")}, {Key: ptr("awsome"), Value: ptr("x")}, {Key: ptr("aws"), Value: ptr("y")}}}},
		{"empty but present required list", &TagResourceRequest{ResourceId: ptr("fs-0123456789abcdef0"), Tags: []Tag{}}},
		{"access point path", &CreateAccessPointRequest{ClientToken: ptr("c"), FileSystemId: ptr("fs-01234567"),
			RootDirectory: &RootDirectory{Path: ptr("/a/b.c/d..e")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestTagKeyLookahead(t *testing.T) {
	for key, ok := range map[string]bool{
		"aws:foo": false, "AWS:foo": false, "aWs:x": false, "aws:": false,
		"awsome": true, "aws": true, "my:aws:key": true, "aw s:x": true, "": false, "bad!": false,
	} {
		req := &TagResourceRequest{ResourceId: ptr("fs-0123456789abcdef0"), Tags: []Tag{{Key: ptr(key), Value: ptr("v")}}}
		vs := violationsOf(t, req)
		if got := len(vs) == 0; got != ok {
			t.Errorf("tag key %q: valid = %v, want %v (violations %v)", key, got, ok, vs)
		}
		for _, v := range vs {
			if v.Path != "tags.1.member.key" {
				t.Errorf("tag key %q: path %q, want tags.1.member.key", key, v.Path)
			}
		}
	}
}

func TestPathPattern(t *testing.T) {
	// The model's Path pattern uses a quantified lookahead that modelgen
	// rewrites; these cases pin the rewrite to the original's meaning.
	for path, ok := range map[string]bool{
		"/": true, "/a": true, "/a/b/c/d": true, "/a/b/c/d/e": false, "/.a": false, "/a/.b": false,
		"/a.": true, "/a..b": true, "//": false, "/a/": false, "a": false, "/a;b": false, "/a b": true,
	} {
		req := &RootDirectory{Path: &path}
		if got := req.Validate() == nil; got != ok {
			t.Errorf("path %q: valid = %v, want %v", path, got, ok)
		}
	}
}

func TestListLimits(t *testing.T) {
	keys := make([]string, 51)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	vs := violationsOf(t, &UntagResourceRequest{ResourceId: ptr("fs-0123456789abcdef0"), TagKeys: keys})
	if len(vs) != 1 || vs[0].Path != "tagKeys" || vs[0].Constraint != "Member must have length less than or equal to 50" {
		t.Fatalf("violations = %+v", vs)
	}
	if !strings.HasPrefix(vs[0].Value, "[k0, k1, ") {
		t.Errorf("value = %q, want a rendered list", vs[0].Value)
	}

	vs = violationsOf(t, &UntagResourceRequest{ResourceId: ptr("fs-0123456789abcdef0"), TagKeys: []string{}})
	if len(vs) != 1 || vs[0].Constraint != "Member must have length greater than or equal to 1" {
		t.Errorf("empty tagKeys: violations = %+v", vs)
	}
	vs = violationsOf(t, &UntagResourceRequest{ResourceId: ptr("fs-0123456789abcdef0"), TagKeys: []string{"ok", "aws:no"}})
	if len(vs) != 1 || vs[0].Path != "tagKeys.2.member" {
		t.Errorf("string list element: violations = %+v", vs)
	}
}

func TestLengthCountsCodePoints(t *testing.T) {
	// 128 three-byte runes: 384 bytes but within TagKey's 128 code points.
	if vs := violationsOf(t, &Tag{Key: ptr(strings.Repeat("語", 128)), Value: ptr("")}); len(vs) != 0 {
		t.Errorf("128 runes rejected: %v", vs)
	}
	if vs := violationsOf(t, &Tag{Key: ptr(strings.Repeat("語", 129)), Value: ptr("")}); len(vs) != 1 {
		t.Errorf("129 runes: violations = %v, want 1", vs)
	}
}

func TestValueTruncation(t *testing.T) {
	vs := violationsOf(t, &CreateFileSystemRequest{CreationToken: ptr(strings.Repeat("x", 1000))})
	if len(vs) != 1 || len(vs[0].Value) > 300 || !strings.HasSuffix(vs[0].Value, "...") {
		t.Errorf("long value not truncated: %d chars", len(vs[0].Value))
	}
	secret := strings.Repeat("s", 20001)
	vs = violationsOf(t, &PutFileSystemPolicyRequest{FileSystemId: ptr("fs-01234567"), Policy: &secret})
	if len(vs) != 1 || vs[0].Path != "policy" || len(vs[0].Value) > 70 {
		t.Errorf("policy echoed: %+v", vs)
	}
}
