package efs

import (
	"strings"
	"testing"

	"github.com/efsd/efsd/internal/glob"
)

const (
	testFS   = "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0123456789abcdef0"
	testAP   = "arn:aws:elasticfilesystem:us-east-1:111111111111:access-point/fsap-0123456789abcdef0"
	testRole = "arn:aws:iam::222222222222:role/replicator"
)

// stmt builds a one-statement policy from the inside of a statement object.
func stmt(body string) string {
	return `{"Version":"2012-10-17","Statement":[{` + body + `}]}`
}

func TestPolicyClientAccess(t *testing.T) {
	all := `"Action":["elasticfilesystem:ClientMount","elasticfilesystem:ClientWrite","elasticfilesystem:ClientRootAccess"]`
	for _, tc := range []struct {
		name   string
		policy string
		ap     string
		want   ClientAccess
	}{
		{"mount only", stmt(`"Effect":"Allow","Principal":{"AWS":"*"},"Action":"elasticfilesystem:ClientMount"`), "", ClientAccess{Mount: true}},
		{"principal star string", stmt(`"Effect":"Allow","Principal":"*",` + all), "", FullClientAccess},
		{"principal list with star", stmt(`"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111111111111:root","*"]},` + all), "", FullClientAccess},
		{"account principal is not anonymous", stmt(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},` + all), "", ClientAccess{}},
		{"account id principal is not anonymous", stmt(`"Effect":"Allow","Principal":{"AWS":"111111111111"},` + all), "", ClientAccess{}},
		{"service principal is not anonymous", stmt(`"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},` + all), "", ClientAccess{}},
		{"wildcard action", stmt(`"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:Client*"`), "", FullClientAccess},
		{"star action", stmt(`"Effect":"Allow","Principal":"*","Action":"*"`), "", FullClientAccess},
		{"service star", stmt(`"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:*"`), "", FullClientAccess},
		{"question mark", stmt(`"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:ClientMoun?"`), "", ClientAccess{Mount: true}},
		{"action case", stmt(`"Effect":"Allow","Principal":"*","Action":"ELASTICFILESYSTEM:clientmount"`), "", ClientAccess{Mount: true}},
		{"not action", stmt(`"Effect":"Allow","Principal":"*","NotAction":"elasticfilesystem:ClientRootAccess"`), "", ClientAccess{Mount: true, Write: true}},
		{"other service action", stmt(`"Effect":"Allow","Principal":"*","Action":"s3:*"`), "", ClientAccess{}},
		{"resource matches", stmt(`"Effect":"Allow","Principal":"*","Resource":"` + testFS + `",` + all), "", FullClientAccess},
		{"resource wildcard", stmt(`"Effect":"Allow","Principal":"*","Resource":"arn:aws:elasticfilesystem:*:111111111111:file-system/*",` + all), "", FullClientAccess},
		{"other resource", stmt(`"Effect":"Allow","Principal":"*","Resource":"arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-99999999",` + all), "", ClientAccess{}},
		{"not resource", stmt(`"Effect":"Allow","Principal":"*","NotResource":"` + testFS + `",` + all), "", ClientAccess{}},
		{"via mount target", stmt(`"Effect":"Allow","Principal":{"AWS":"*"},` + all + `,"Condition":{"Bool":{"elasticfilesystem:AccessedViaMountTarget":"true"}}`), "", FullClientAccess},
		{"via mount target bool value", stmt(`"Effect":"Allow","Principal":{"AWS":"*"},` + all + `,"Condition":{"Bool":{"elasticfilesystem:AccessedViaMountTarget":true}}`), "", FullClientAccess},
		{"condition key case", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"Bool":{"ElasticFileSystem:accessedViaMountTarget":"true"}}`), "", FullClientAccess},
		{"TLS required by allow", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"Bool":{"aws:SecureTransport":"true"}}`), "", ClientAccess{}},
		{"TLS required by deny", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, "", ClientAccess{}},
		{"deny wins", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"elasticfilesystem:ClientWrite"}]}`, "", ClientAccess{Mount: true, Root: true}},
		{"deny of another principal", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111111111111:role/x"},"Action":"*"}]}`, "", FullClientAccess},
		{"deny not principal", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111111111111:role/x"},"Action":"elasticfilesystem:ClientRootAccess"}]}`, "", ClientAccess{Mount: true, Write: true}},
		{"access point arn matches", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"StringEquals":{"elasticfilesystem:AccessPointArn":"` + testAP + `"}}`), testAP, FullClientAccess},
		{"access point arn on a plain mount", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"StringEquals":{"elasticfilesystem:AccessPointArn":"` + testAP + `"}}`), "", ClientAccess{}},
		{"access point arn like", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"ArnLike":{"elasticfilesystem:AccessPointArn":"arn:aws:elasticfilesystem:*:*:access-point/fsap-*"}}`), testAP, FullClientAccess},
		{"access point arn other", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"StringEquals":{"elasticfilesystem:AccessPointArn":["x","y"]}}`), testAP, ClientAccess{}},
		{"deny outside access points", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"Null":{"elasticfilesystem:AccessPointArn":"true"}}}]}`, "", ClientAccess{}},
		{"deny outside access points, through one", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"Null":{"elasticfilesystem:AccessPointArn":"true"}}}]}`, testAP, FullClientAccess},
		{"negated operator, absent key", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"StringNotEquals":{"aws:PrincipalAccount":"999999999999"}}`), "", FullClientAccess},
		{"positive operator, absent key", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}`), "", ClientAccess{}},
		{"if exists, absent key", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"StringEqualsIfExists":{"aws:SourceAccount":"111111111111"}}`), "", FullClientAccess},
		{"not ip address, absent source ip", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}`, "", ClientAccess{}},
		{"unknown key fails an allow", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"StringEquals":{"aws:ResourceTag/team":"x"}}`), "", ClientAccess{}},
		{"unknown key applies a deny", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":"*","Action":"elasticfilesystem:ClientWrite","Condition":{"StringEquals":{"aws:ResourceTag/team":"x"}}}]}`, "", ClientAccess{Mount: true, Root: true}},
		{"unknown operator fails an allow", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`), "", ClientAccess{}},
		{"set operator fails an allow", stmt(`"Effect":"Allow","Principal":"*",` + all + `,"Condition":{"ForAnyValue:StringEquals":{"elasticfilesystem:AccessPointArn":"x"}}`), "", ClientAccess{}},
		{"unknown part but a definite no: deny does not apply", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":"*","Action":"*","Condition":{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"aws:ResourceTag/x":"y"}}}]}`, "", FullClientAccess},
		{"malformed principal applies a deny", `{"Statement":[{"Effect":"Allow","Principal":"*",` + all + `},{"Effect":"Deny","Principal":42,"Action":"*"}]}`, "", ClientAccess{}},
		{"malformed action fails an allow", stmt(`"Effect":"Allow","Principal":"*","Action":{"x":1}`), "", ClientAccess{}},
		{"statement object", `{"Statement":{"Effect":"Allow","Principal":"*",` + all + `}}`, "", FullClientAccess},
		{"no statement applies", stmt(`"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:DescribeFileSystems"`), "", ClientAccess{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.ClientAccess(testFS, tc.ap); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPolicyReplicationPrincipal(t *testing.T) {
	req := PolicyRequest{
		Action: "elasticfilesystem:ReplicationWrite", Resource: testFS,
		Principal: PolicyPrincipal{Account: "222222222222", ARN: testRole},
		Context:   map[string]string{"aws:principalaccount": "222222222222", "aws:principalarn": testRole},
	}
	for _, tc := range []struct {
		name   string
		policy string
		want   bool
	}{
		{"account root", stmt(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"elasticfilesystem:*"`), true},
		{"account id", stmt(`"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"elasticfilesystem:ReplicationWrite"`), true},
		{"the role", stmt(`"Effect":"Allow","Principal":{"AWS":"` + testRole + `"},"Action":"elasticfilesystem:ReplicationWrite"`), true},
		{"role in a list", stmt(`"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::333333333333:root","` + testRole + `"]},"Action":"elasticfilesystem:ReplicationWrite"`), true},
		{"another role", stmt(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:role/other"},"Action":"elasticfilesystem:ReplicationWrite"`), false},
		{"another account", stmt(`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::333333333333:root"},"Action":"elasticfilesystem:ReplicationWrite"`), false},
		{"anyone", stmt(`"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:ReplicationWrite"`), true},
		{"other actions only", stmt(`"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"elasticfilesystem:Client*"`), false},
		{"principal account condition", stmt(`"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:ReplicationWrite","Condition":{"StringEquals":{"aws:PrincipalAccount":"222222222222"}}`), true},
		{"principal arn condition, other", stmt(`"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:ReplicationWrite","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/other*"}}`), false},
		{"not principal names the role", stmt(`"Effect":"Allow","NotPrincipal":{"AWS":"` + testRole + `"},"Action":"*"`), false},
		{"not principal account does not exclude its role", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"*"}]}`, false},
		{"deny the account", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},{"Effect":"Deny","Principal":{"AWS":"222222222222"},"Action":"elasticfilesystem:Replication*"}]}`, false},
		{"deny account root by arn", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"*"}]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Allows(req); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParsePolicyRejects(t *testing.T) {
	for _, doc := range []string{``, `[]`, `{}`, `{"Statement":[]}`, `{"Statement":"x"}`} {
		if _, err := ParsePolicy(doc); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", doc)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*a*b*", "xxaxxbxx", true}, {"", "", true}, {"", "a", false},
		{"arn:aws:elasticfilesystem:*:*:file-system/fs-*", testFS, true},
	} {
		if got := glob.Match(tc.p, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
	// Pathological patterns stay polynomial.
	if glob.Match(strings.Repeat("*a", 500)+"b", strings.Repeat("a", 5000)) {
		t.Error("pathological pattern matched")
	}
}
