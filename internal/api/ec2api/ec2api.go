// Package ec2api is efsd's EC2 front end: the few EC2 Query-protocol
// actions EFS users touch (describing the VPCs, subnets, availability
// zones, security groups and mount-target network interfaces of efsd's
// network model, and making security groups with CIDR ingress rules). It decodes the form, calls the domain service and renders
// EC2's XML; authentication, body limits and routing stay with package api,
// which hands it only verified requests. The XML shapes are written by hand
// after botocore's ec2 model (2016-11-15), for the members efsd can fill;
// a test holds them to the model's excerpt pinned in testdata.
package ec2api

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/efsd/efsd/internal/efs"
)

// maxFormKeys bounds a request's parameters, so that reading lists and
// filters (each a pass over the form) stays cheap.
const maxFormKeys = 5000

// Version is the only EC2 API version served.
const Version = "2016-11-15"

const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// Error is an EC2 error: its code, message and HTTP status.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

// Handler serves EC2 actions over an efs.Service.
type Handler struct {
	svc *efs.Service
}

// New returns a Handler for svc.
func New(svc *efs.Service) *Handler { return &Handler{svc: svc} }

type action func(h *Handler, c *call) (any, error)

// call is one verified request's form and caller.
type call struct {
	ctx  context.Context
	p    efs.Principal
	form url.Values
}

var actions = map[string]action{
	"DescribeVpcs":              (*Handler).describeVpcs,
	"DescribeVpcAttribute":      (*Handler).describeVpcAttribute,
	"DescribeSubnets":           (*Handler).describeSubnets,
	"DescribeSecurityGroups":    (*Handler).describeSecurityGroups,
	"DescribeAvailabilityZones": (*Handler).describeAvailabilityZones,
	"DescribeNetworkInterfaces": (*Handler).describeNetworkInterfaces,

	"CreateSecurityGroup":           (*Handler).createSecurityGroup,
	"AuthorizeSecurityGroupIngress": (*Handler).authorizeSecurityGroupIngress,
	"RevokeSecurityGroupIngress":    (*Handler).revokeSecurityGroupIngress,
	"AuthorizeSecurityGroupEgress":  (*Handler).authorizeSecurityGroupEgress,
	"RevokeSecurityGroupEgress":     (*Handler).revokeSecurityGroupEgress,
	"DeleteSecurityGroup":           (*Handler).deleteSecurityGroup,
}

// ec2Codes are the domain's codes that are EC2's (those with a dot, such
// as InvalidGroup.NotFound, are too).
var ec2Codes = map[efs.Code]bool{efs.DependencyViolation: true, efs.CannotDelete: true,
	efs.InvalidParameter: true, efs.GroupLimitExceeded: true, efs.RuleLimitExceeded: true}

// Action returns the action a form names, for logs ("" when none).
func Action(form url.Values) string {
	a := form.Get("Action")
	if _, ok := actions[a]; ok {
		return a
	}
	return ""
}

// Serve runs the action the form names as p and returns the XML response.
// Every error it returns is an *Error, but for internal ones.
func (h *Handler) Serve(ctx context.Context, p efs.Principal, form url.Values, requestID string) ([]byte, error) {
	if len(form) > maxFormKeys {
		return nil, errorf("InvalidParameterValue", "The request has more than %d parameters.", maxFormKeys)
	}
	name := form.Get("Action")
	if name == "" {
		return nil, &Error{Code: "MissingAction", Message: "The request must contain the parameter Action.", Status: http.StatusBadRequest}
	}
	act, ok := actions[name]
	if !ok {
		return nil, &Error{Code: "InvalidAction", Message: fmt.Sprintf("The action %s is not valid for this web service.", name), Status: http.StatusBadRequest}
	}
	if v := form.Get("Version"); v != Version {
		return nil, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("Version %q is not served; efsd speaks EC2 API version %s.", v, Version), Status: http.StatusBadRequest}
	}
	if form.Get("DryRun") == "true" {
		return nil, &Error{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: http.StatusPreconditionFailed}
	}
	out, err := act(h, &call{ctx: ctx, p: p, form: form})
	if err != nil {
		var de *efs.Error
		if errors.As(err, &de) && de.Code != efs.InternalServerError {
			// The domain's network errors carry EC2's codes; any other
			// refusal is a bad parameter.
			code := string(de.Code)
			if !strings.Contains(code, ".") && !ec2Codes[de.Code] {
				code = "InvalidParameterValue"
			}
			return nil, errorf(code, "%s", de.Message)
		}
		return nil, err
	}
	return render(name, requestID, out)
}

// header is the part of every response EC2 writes first: the namespace and
// the request ID. Each response shape embeds it.
type header struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

func (h *header) head() *header { return h }

// render fills in out's header and encodes it.
func render(action, requestID string, out any) ([]byte, error) {
	if o, ok := out.(interface{ head() *header }); ok {
		*o.head() = header{Xmlns: xmlns, RequestID: requestID}
	}
	buf, err := xml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode %s response: %w", action, err)
	}
	return append([]byte(xml.Header), buf...), nil
}

// ErrorXML renders an error in EC2's format.
func ErrorXML(code, message, requestID string) []byte {
	type xmlErr struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type response struct {
		XMLName   xml.Name `xml:"Response"`
		Errors    []xmlErr `xml:"Errors>Error"`
		RequestID string   `xml:"RequestID"`
	}
	buf, _ := xml.Marshal(response{Errors: []xmlErr{{code, message}}, RequestID: requestID})
	return append([]byte(xml.Header), buf...)
}
