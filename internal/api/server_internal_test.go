package api

import (
	"errors"
	"net/http"
	"testing"
)

// Operations a newer model adds before efsd implements them answer an
// honest 501, never a fake success.
func TestUnimplementedOperationAnswers501(t *testing.T) {
	_, err := notImplemented("FutureOperation")(nil)
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusNotImplemented || ae.code != "NotImplemented" {
		t.Fatalf("got %v", err)
	}
}
