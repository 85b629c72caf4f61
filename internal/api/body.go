package api

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"

	"github.com/efsd/efsd/internal/efs"
)

// maxBody caps request bodies; the largest EFS input (a 20,000-character
// policy) fits many times over.
const maxBody = 1 << 20

// readBody reads r's body into memory reserved from the body budget and
// hashes it as it arrives. A body announced larger than maxBody is refused
// before it is read; one of unknown length (chunked) reserves maxBody. The
// read is bounded in time by the server's ReadTimeout. release returns the
// reservation once the body is no longer needed.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, sum [sha256.Size]byte, release func(), err error) {
	n := r.ContentLength
	switch {
	case n > maxBody:
		return nil, sum, nil, tooLarge()
	case n < 0:
		n = maxBody
	}
	client := clientAddr(r)
	if !s.bodies.take(client, n) {
		return nil, sum, nil, &apiError{code: "ThrottlingException", status: http.StatusTooManyRequests,
			msg: "Too many request bodies are being received at once; retry the request later."}
	}
	release = func() { s.bodies.give(client, n) }
	h := sha256.New()
	body, err = readAtMost(io.TeeReader(r.Body, h), n, r.ContentLength >= 0)
	if err != nil {
		release()
		return nil, sum, nil, err
	}
	h.Sum(sum[:0])
	return body, sum, release, nil
}

// readAtMost reads rd to its end into a buffer that never grows beyond
// limit bytes; exact says limit is the announced length (so the buffer is
// made once).
func readAtMost(rd io.Reader, limit int64, exact bool) ([]byte, error) {
	size := min(limit, 16<<10)
	if exact {
		size = limit
	}
	buf := make([]byte, 0, size)
	for {
		if int64(len(buf)) == int64(cap(buf)) {
			if int64(len(buf)) >= limit {
				// Full: only the end of the body may follow.
				var probe [1]byte
				m, err := rd.Read(probe[:])
				if m > 0 {
					return nil, tooLarge()
				}
				if err == io.EOF {
					return buf, nil
				}
				if err != nil {
					return nil, bodyError(err)
				}
				continue
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf))+1, limit))
			copy(grown, buf)
			buf = grown
		}
		m, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, bodyError(err)
		}
	}
}

func tooLarge() error {
	return &apiError{code: string(efs.BadRequest), status: http.StatusBadRequest,
		msg: fmt.Sprintf("The request body is larger than %d bytes.", maxBody)}
}

// bodyError classifies a failed body read: a client too slow to send its
// body within the read timeout, or anything else (a malformed chunked
// encoding, a connection closed early).
func bodyError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &apiError{code: "RequestTimeoutException", status: http.StatusRequestTimeout,
			msg: "The request body was not received within the time allowed."}
	}
	return &apiError{code: string(efs.BadRequest), status: http.StatusBadRequest,
		msg: fmt.Sprintf("The request body could not be read: %v.", err)}
}

// clientAddr is the address of the connection's peer; the zero Addr when
// there is none (a test calling ServeHTTP directly).
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
