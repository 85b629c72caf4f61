// Package sdkhttp holds the HTTP client wrapper the project's own
// aws-sdk-go-v2 clients (tests, benchmarks, attack tools) send through.
//
// smithy-go closes a request's body as soon as the response arrives. When
// net/http has already sent the body straight to the socket (ReadFrom) it
// still reads the body once more for trailing bytes; that read can now
// return io.EOF from the closed body, which net/http takes as a write
// error: it closes the connection, sometimes while the response body is
// being read ("use of closed network connection", aws-sdk-go-v2#2737). The
// SDK's retries hide this; our clients run without retries so that they
// see every error the server returns, and so must not meet it.
package sdkhttp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// New is the SDK's default HTTP client, Buffered.
func New() aws.HTTPClient { return Buffered(awshttp.NewBuildableClient()) }

// Buffered returns c sending every request with its body read into memory
// first, in a reader only net/http holds, so nothing closes it under
// net/http's writer. API request bodies are small.
func Buffered(c aws.HTTPClient) aws.HTTPClient {
	return bufferedClient{c}
}

type bufferedClient struct{ c aws.HTTPClient }

func (b bufferedClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return b.c.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return b.c.Do(r)
}
