// Command modelgen generates package internal/api/wire from the Amazon EFS
// API model (elasticfilesystem 2015-02-01) that ships with botocore, so that
// efsd's wire types, validation and routes follow the same model the AWS SDKs
// are built from.
//
// Usage, from the repository root (go generate runs it from the package):
//
//	go run ./tools/modelgen [-model path/to/service-2.json.gz] [-out file]
//
// Without -model, the model and its botocore version come from python3.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// botocoreModel is the EFS model's path inside the botocore package.
const botocoreModel = "data/efs/2015-02-01/service-2.json.gz"

func main() {
	modelPath := flag.String("model", "", "path to service-2.json(.gz); default: botocore's copy, located via python3")
	out := flag.String("out", "internal/api/wire/zz_generated.go", "output Go file")
	flag.Parse()
	code, err := generateFrom(*modelPath)
	if err == nil {
		err = os.WriteFile(*out, code, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modelgen:", err)
		os.Exit(1)
	}
}

// generateFrom loads the model (botocore's when path is "") and returns the
// formatted Go source.
func generateFrom(path string) ([]byte, error) {
	source := "model file " + filepath.Base(path)
	if path == "" {
		// One python3 call yields both the directory and the version for the header.
		out, err := exec.Command("python3", "-c",
			"import botocore, os; print(os.path.dirname(botocore.__file__)); print(botocore.__version__)").Output()
		if err != nil {
			return nil, fmt.Errorf("locate botocore via python3 (or pass -model): %w", err)
		}
		dir, version, ok := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if !ok {
			return nil, fmt.Errorf("locate botocore: unexpected python3 output %q", out)
		}
		path = filepath.Join(strings.TrimSpace(dir), filepath.FromSlash(botocoreModel))
		source = "botocore " + strings.TrimSpace(version) + " " + botocoreModel
	}
	m, err := loadModel(path)
	if err != nil {
		return nil, err
	}
	return generate(m, source)
}
