package efs

import (
	"strings"
	"testing"
)

func TestParseResourceID(t *testing.T) {
	for in, want := range map[string]ParsedID{
		"fs-0123456789abcdef0": {ID: "fs-0123456789abcdef0"},
		"arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-0123456789abcdef0": {
			ID: "fs-0123456789abcdef0", Region: "eu-west-1", Account: "123456789012"},
		"arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-0123456789abcdef0": {
			ID: "fsap-0123456789abcdef0", Region: "us-east-1", Account: "123456789012"},
	} {
		if got := ParseResourceID(in); got != want {
			t.Errorf("ParseResourceID(%q) = %+v, want %+v", in, got, want)
		}
	}
	p := Principal{Account: "123456789012", Region: "us-east-1"}
	if !ParseResourceID("fs-01234567").Belongs(p) || ParseResourceID("arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-01234567").Belongs(p) {
		t.Fatal("Belongs")
	}
}

func TestMarkers(t *testing.T) {
	for _, seq := range []int64{0, 1, 1 << 40} {
		got, err := decodeMarker(encodeMarker(seq))
		if err != nil || got != seq {
			t.Fatalf("round trip %d: %d %v", seq, got, err)
		}
	}
	for _, bad := range []string{"x", "ZWZzZDE6LTE", encodeMarker(5) + "!"} {
		if _, err := decodeMarker(bad); CodeOf(err) != BadRequest {
			t.Errorf("decodeMarker(%q) = %v, want BadRequest", bad, err)
		}
	}
}

func TestKMSKeyARN(t *testing.T) {
	p := Principal{Account: "111111111111", Region: "eu-west-1"}
	if got := kmsKeyARN(p, "1234abcd-12ab-34cd-56ef-1234567890ab"); got != "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab" {
		t.Errorf("key id: %s", got)
	}
	if got := kmsKeyARN(p, "mrk-0123"); got != "arn:aws:kms:eu-west-1:111111111111:key/mrk-0123" {
		t.Errorf("mrk: %s", got)
	}
	// An alias is reported as the ARN of the key it names, stable per alias.
	alias := kmsKeyARN(p, "alias/x")
	if !strings.HasPrefix(alias, "arn:aws:kms:eu-west-1:111111111111:key/") || alias != kmsKeyARN(p, "alias/x") ||
		alias == kmsKeyARN(p, "alias/y") {
		t.Errorf("alias: %s", alias)
	}
	if got := kmsKeyARN(p, "arn:aws:kms:eu-west-1:111111111111:alias/x"); got != alias {
		t.Errorf("alias ARN: %s, want %s", got, alias)
	}
	if got := kmsKeyARN(p, "arn:aws:kms:us-east-1:222222222222:alias/x"); !strings.HasPrefix(got, "arn:aws:kms:us-east-1:222222222222:key/") {
		t.Errorf("alias ARN of another account: %s", got)
	}
	d1, d2 := kmsKeyARN(p, ""), kmsKeyARN(Principal{Account: "111111111111", Region: "us-east-1"}, "")
	if d1 != kmsKeyARN(p, "") || d1 == d2 || !strings.HasPrefix(d1, "arn:aws:kms:eu-west-1:111111111111:key/") {
		t.Errorf("default keys: %s %s", d1, d2)
	}
}

func TestMergeTags(t *testing.T) {
	tags, err := mergeTags([]Tag{{"a", "1"}, {"b", "2"}}, []Tag{{"b", "3"}, {"c", "4"}})
	if err != nil || len(tags) != 3 || tags[1].Value != "3" || tags[2].Key != "c" {
		t.Fatalf("merge: %v %v", tags, err)
	}
	if _, err := mergeTags(nil, []Tag{{"AwS:x", "1"}}); CodeOf(err) != BadRequest {
		t.Fatalf("aws: prefix: %v", err)
	}
	if got := removeTags(tags, []string{"a", "zz"}); len(got) != 2 || got[0].Key != "b" {
		t.Fatalf("remove: %v", got)
	}
}

func TestCheckPolicy(t *testing.T) {
	good := []string{
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:ClientMount"}}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::1:root"},"NotAction":"*"}]}`,
	}
	for _, p := range good {
		if err := checkPolicy(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	bad := []string{
		`[]`, `{"Statement":[]}`, `{"Version":"2020-01-01","Statement":{"Effect":"Allow","Principal":"*","Action":"*"}}`,
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":[]}}`,
	}
	for _, p := range bad {
		if err := checkPolicy(p); CodeOf(err) != InvalidPolicyException {
			t.Errorf("%s: %v, want InvalidPolicyException", p, err)
		}
	}
}
