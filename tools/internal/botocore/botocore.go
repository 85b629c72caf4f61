// Package botocore finds the botocore package that python3 imports, so that
// the generators can re-pin the AWS data they are generated from.
package botocore

import (
	"fmt"
	"os/exec"
	"strings"
)

// Locate returns botocore's package directory and version.
func Locate() (dir, version string, err error) {
	out, err := exec.Command("python3", "-c",
		"import botocore, os; print(os.path.dirname(botocore.__file__)); print(botocore.__version__)").Output()
	if err != nil {
		return "", "", fmt.Errorf("locate botocore via python3: %w", err)
	}
	dir, version, ok := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if !ok {
		return "", "", fmt.Errorf("locate botocore: unexpected python3 output %q", out)
	}
	return strings.TrimSpace(dir), strings.TrimSpace(version), nil
}
