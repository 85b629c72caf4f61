package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/efsd/efsd/internal/efstest"
)

// ec2Raw sends an EC2 request signed for service ec2: form as the POST
// body (with contentType) or, for GET, as the URL query.
func ec2Raw(t *testing.T, srv *efstest.Server, method, contentType, form string) (int, string) {
	t.Helper()
	target, body := srv.URL+"/", ""
	if method == http.MethodGet {
		target += "?" + form
	} else {
		body = form
	}
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: efstest.AccountA.AccessKeyID,
		SecretAccessKey: efstest.AccountA.SecretAccessKey}, req, hex.EncodeToString(sum[:]), "ec2", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp := srv.Do(req)
	return resp.StatusCode, string(efstest.ReadBody(t, resp))
}

// TestEC2Protocol: GET and POST forms, EC2's error document for bad
// requests, and requests for EFS still served as before.
func TestEC2Protocol(t *testing.T) {
	srv := efstest.Start(t)
	const form = "application/x-www-form-urlencoded; charset=utf-8"
	status, body := ec2Raw(t, srv, http.MethodGet, "", "Action=DescribeAvailabilityZones&Version=2016-11-15")
	if status != 200 || !strings.Contains(body, "<DescribeAvailabilityZonesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">") ||
		!strings.Contains(body, "<zoneName>us-east-1a</zoneName>") {
		t.Fatalf("GET: %d %s", status, body)
	}
	// Parameters the action does not read are ignored, but not without end.
	big := url.Values{"Action": {"DescribeSubnets"}, "Version": {"2016-11-15"}}
	for i := range 5001 {
		big.Set("Padding."+strconv.Itoa(i+1), "x")
	}
	for _, tc := range []struct {
		name, method, ctype, form, code string
		status                          int
	}{
		{"no action", http.MethodPost, form, "Version=2016-11-15", "MissingAction", 400},
		{"unknown action", http.MethodPost, form, "Action=RunInstances&Version=2016-11-15", "InvalidAction", 400},
		{"other version", http.MethodPost, form, "Action=DescribeVpcs&Version=2014-01-01", "InvalidParameterValue", 400},
		{"JSON body", http.MethodPost, "application/json", `{"Action":"DescribeVpcs"}`, "InvalidParameterValue", 400},
		{"bad list index", http.MethodPost, form, "Action=DescribeVpcs&Version=2016-11-15&VpcId.x=vpc-1", "InvalidParameterValue", 400},
		{"filter without name", http.MethodPost, form, "Action=DescribeVpcs&Version=2016-11-15&Filter.1.Value.1=x", "InvalidParameterValue", 400},
		{"too many parameters", http.MethodPost, form, big.Encode(), "InvalidParameterValue", 400},
		{"PUT", http.MethodPut, form, "Action=DescribeVpcs&Version=2016-11-15", "InvalidAction", 400},
	} {
		status, body := ec2Raw(t, srv, tc.method, tc.ctype, tc.form)
		if status != tc.status || !strings.HasPrefix(body, "<?xml") ||
			!strings.Contains(body, "<Response><Errors><Error><Code>"+tc.code+"</Code><Message>") || !strings.Contains(body, "<RequestID>") {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	// An unsigned EC2 request is refused in EC2's format.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("Action=DescribeVpcs&Version=2016-11-15"))
	req.Header.Set("Content-Type", form)
	resp := srv.Do(req)
	if b := string(efstest.ReadBody(t, resp)); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(b, "<Code>MissingAuthenticationToken</Code>") {
		t.Errorf("unsigned: %d %s", resp.StatusCode, b)
	}
	// The EFS API is unchanged on the same endpoint.
	if _, err := srv.Client(efstest.AccountA, region).DescribeFileSystems(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// TestEC2SecurityGroupSurvivesRestart: a group made through the API is
// stored with the network, so it and its rules outlive the process.
func TestEC2SecurityGroupSurvivesRestart(t *testing.T) {
	srv := efstest.Start(t)
	ctx := context.Background()
	g, err := srv.EC2Client(efstest.AccountA, region).CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("kept"), Description: aws.String("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.EC2Client(efstest.AccountA, region).AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: g.GroupId, IpProtocol: aws.String("-1"), CidrIp: aws.String("10.1.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	out, err := srv.EC2Client(efstest.AccountA, region).DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(g.GroupId)}})
	if err != nil || aws.ToString(out.SecurityGroups[0].IpPermissions[0].IpRanges[0].CidrIp) != "10.1.0.0/16" {
		t.Fatalf("after restart: %v %+v", err, out)
	}
}
