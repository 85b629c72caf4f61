package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/efsd/efsd/internal/api/ec2api"
	"github.com/efsd/efsd/internal/efs"
	"github.com/efsd/efsd/internal/sigv4"
)

// ec2Service is the SigV4 service name of EC2's API: a request whose
// credential scope names it is served by ec2api, on the same endpoint,
// signature check and limits as the EFS API.
const ec2Service = "ec2"

// looksLikeEC2 tells an unsigned EC2 request from an EFS one: a form body
// or an Action in the query, which no EFS operation has.
func looksLikeEC2(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/x-www-form-urlencoded" || r.URL.Query().Has("Action")
}

// serveEC2 serves one EC2 Query-protocol request: signature, region and
// body as for EFS, then the form (the POST body, or the URL query of a
// GET) to ec2api, and EC2's XML answer or error.
func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := s.reqID()
	w.Header().Set("x-amzn-RequestId", id)
	op, status, err := s.serveEC2Call(w, r, id)
	if err != nil {
		status = s.writeEC2Error(w, id, err)
	}
	d := time.Since(start)
	attrs := []any{"op", "ec2:" + op, "status", status, "requestId", id, "duration", d}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	s.log.Info("request", attrs...)
	if s.observe != nil {
		s.observe("ec2:"+op, status, d)
	}
}

func (s *Server) serveEC2Call(w http.ResponseWriter, r *http.Request, reqID string) (op string, status int, err error) {
	bodyRead := false
	defer func() {
		if !bodyRead && r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
	}()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return "", 0, &ec2api.Error{Code: "InvalidAction", Status: http.StatusBadRequest,
			Message: fmt.Sprintf("EC2 actions are sent with POST or GET, not %s.", r.Method)}
	}
	pending, err := s.ec2Verifier.Begin(r)
	if err != nil {
		return "", 0, err
	}
	if region := pending.Claimed().Region; !s.svc.Regions().Has(region) {
		return "", 0, &ec2api.Error{Code: "AuthFailure", Status: http.StatusUnauthorized,
			Message: fmt.Sprintf("Region '%s' is not served by this endpoint.", region)}
	}
	body, sum, release, err := s.readBody(w, r)
	if err != nil {
		return "", 0, err
	}
	bodyRead = true
	defer release()
	ident, err := pending.Finish(sum)
	if err != nil {
		return "", 0, err
	}
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
			return "", 0, &ec2api.Error{Code: "InvalidParameterValue", Status: http.StatusBadRequest,
				Message: "An EC2 request body must be application/x-www-form-urlencoded."}
		}
		if form, err = url.ParseQuery(string(body)); err != nil {
			return "", 0, &ec2api.Error{Code: "InvalidParameterValue", Status: http.StatusBadRequest,
				Message: "The request body is not a well-formed form."}
		}
	}
	op = ec2api.Action(form)
	p := efs.Principal{Account: s.accounts[ident.AccessKey].Account, Region: ident.Region}
	out, err := s.ec2.Serve(r.Context(), p, form, reqID)
	if err != nil {
		return op, 0, err
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return op, http.StatusOK, nil
}

// writeEC2Error renders err in EC2's XML error format and returns the
// status written. Authentication and front-end errors take EC2's codes.
func (s *Server) writeEC2Error(w http.ResponseWriter, reqID string, err error) int {
	code, msg, status := "InternalError", "An internal error has occurred.", http.StatusInternalServerError
	var (
		ee *ec2api.Error
		ae *apiError
		se *sigv4.Error
	)
	switch {
	case errors.As(err, &ee):
		code, msg, status = ee.Code, ee.Message, ee.Status
	case errors.As(err, &ae):
		code, msg, status = strings.TrimSuffix(ae.code, "Exception"), ae.msg, ae.status
		if ae.code == "ThrottlingException" {
			code = "RequestLimitExceeded"
		}
	case errors.As(err, &se):
		code, msg, status = ec2AuthCode(se.Code), se.Message, se.Status
	default:
		s.log.Error("internal error", "requestId", reqID, "err", err)
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(ec2api.ErrorXML(code, msg, reqID))
	return status
}

// ec2AuthCode names an authentication failure as EC2 does.
func ec2AuthCode(code string) string {
	switch code {
	case "UnrecognizedClientException":
		return "AuthFailure"
	case "InvalidSignatureException":
		return "SignatureDoesNotMatch"
	case "MissingAuthenticationTokenException":
		return "MissingAuthenticationToken"
	case "IncompleteSignatureException":
		return "IncompleteSignature"
	}
	return strings.TrimSuffix(code, "Exception")
}
