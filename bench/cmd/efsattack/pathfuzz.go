package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/efsd/efsd/bench/internal/loadgen"
	"github.com/efsd/efsd/internal/api/wire"
)

// pathFuzz: every route of the model, with empty, ".", ".." and doubled
// slash segments inserted or substituted at every position, signed with
// the development credential. No answer may redirect (a redirect sends
// an SDK's signed request elsewhere, and proves the router rewrote the
// path), and every error must carry X-Amzn-ErrorType so SDKs can decode
// it.
func (h *harness) pathFuzz() result {
	r := result{held: true}
	in, err := h.startEfsd("path-fuzz", efsdOpts{})
	if err != nil {
		r.fail("setup: %v", err)
		return r
	}
	defer in.stop()
	hc := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second, Control: loadgen.LoopbackOnly}).DialContext,
			MaxIdleConnsPerHost: 4},
	}
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: devKey, SecretAccessKey: devSecret}
	type probe struct{ method, path string }
	var probes []probe
	seen := map[string]bool{}
	for _, op := range wire.Operations {
		for _, p := range pathVariants(fillLabels(op.URI)) {
			if k := op.Method + " " + p; !seen[k] {
				seen[k] = true
				probes = append(probes, probe{op.Method, p})
			}
		}
	}
	r.scale = fmt.Sprintf("%d routes × %d path variants, signed", len(wire.Operations), len(probes))
	codes := map[int]int{}
	var redirects, bare, serverErrs []string
	for _, p := range probes {
		if h.check() != nil {
			break
		}
		body := []byte{}
		if p.method == http.MethodPost || p.method == http.MethodPut {
			body = []byte("{}")
		}
		req, err := http.NewRequestWithContext(h.ctx, p.method, in.url, bytes.NewReader(body))
		if err != nil {
			r.fail("request %s %s: %v", p.method, p.path, err)
			continue
		}
		req.URL.Path, req.URL.RawPath = p.path, p.path
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", hash)
		ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
		if err := signer.SignHTTP(ctx, creds, req, hash, "elasticfilesystem", region, time.Now()); err != nil {
			cancel()
			r.fail("sign: %v", err)
			continue
		}
		resp, err := hc.Do(req)
		cancel()
		if err != nil {
			serverErrs = append(serverErrs, fmt.Sprintf("%s %s: %v", p.method, p.path, err))
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		codes[resp.StatusCode]++
		what := fmt.Sprintf("%s %s → %d", p.method, p.path, resp.StatusCode)
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			if loc := resp.Header.Get("Location"); loc != "" {
				what += " Location " + loc
			}
			redirects = append(redirects, what)
		case resp.StatusCode >= 400 && resp.Header.Get("X-Amzn-ErrorType") == "":
			bare = append(bare, what)
		}
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
			serverErrs = append(serverErrs, what)
		}
	}
	var cs []string
	for c, n := range codes {
		cs = append(cs, fmt.Sprintf("%d×%d", n, c))
	}
	sort.Strings(cs)
	r.fig("statuses %s", strings.Join(cs, " "))
	if len(redirects) > 0 {
		r.fail("%d redirects (e.g. %s)", len(redirects), redirects[0])
	}
	if len(bare) > 0 {
		r.fail("%d errors without X-Amzn-ErrorType (e.g. %s)", len(bare), bare[0])
	}
	if len(serverErrs) > 0 {
		r.fail("%d server errors or failed requests (e.g. %s)", len(serverErrs), serverErrs[0])
	}
	if ok, why := in.alive(); !ok {
		r.fail("%s", why)
	}
	return r
}

// fillLabels puts plausible IDs into a model URI's labels.
func fillLabels(uri string) string {
	return strings.NewReplacer(
		"{FileSystemId}", "fs-0123456789abcdef0",
		"{SourceFileSystemId}", "fs-0123456789abcdef0",
		"{MountTargetId}", "fsmt-0123456789abcdef0",
		"{AccessPointId}", "fsap-0123456789abcdef0",
		"{ResourceId}", "fs-0123456789abcdef0",
	).Replace(uri)
}

// pathVariants returns the path with, at every position, an empty, "."
// or ".." segment inserted, and every segment replaced by each of them,
// plus a trailing slash, a doubled trailing slash and a doubled leading
// slash.
func pathVariants(p string) []string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	join := func(ss []string) string { return "/" + strings.Join(ss, "/") }
	var out []string
	for _, odd := range []string{"", ".", ".."} {
		for i := 0; i <= len(segs); i++ {
			s := append(append(append([]string{}, segs[:i]...), odd), segs[i:]...)
			out = append(out, join(s))
		}
		for i := range segs {
			s := append([]string{}, segs...)
			s[i] = odd
			out = append(out, join(s))
		}
	}
	out = append(out, join(segs)+"/", join(segs)+"//", "/"+join(segs), join(segs)+"/.", join(segs)+"/..")
	return out
}
