// Command modelgen generates package internal/api/wire from the Amazon EFS
// API model (elasticfilesystem 2015-02-01) that ships with botocore, so that
// efsd's wire types, validation and routes follow the same model the AWS SDKs
// are built from.
//
// Usage, from the repository root (go generate runs it from the package):
//
//	go run ./tools/modelgen [-model path/to/service-2.json.gz] [-out file]
//
// Without -model it reads the copy of botocore's model pinned beside the
// generated code (internal/api/wire/service-2.json.gz, its botocore version in
// service-2.source), so that the generated code depends on nothing installed
// on the machine; -refresh first re-pins the model of the botocore that
// python3 imports.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/efsd/efsd/tools/internal/botocore"
)

const (
	// botocoreModel is the EFS model's path inside the botocore package.
	botocoreModel = "data/efs/2015-02-01/service-2.json.gz"
	// pinnedModel is the repository's copy, relative to the repository root.
	pinnedModel = "internal/api/wire/service-2.json.gz"
)

func main() {
	modelPath := flag.String("model", pinnedModel, "path to service-2.json(.gz); its source is read from the .source file beside a pinned copy")
	out := flag.String("out", "internal/api/wire/zz_generated.go", "output Go file")
	refresh := flag.Bool("refresh", false, "re-pin the model of the botocore that python3 imports at -model, then generate")
	flag.Parse()
	err := error(nil)
	if *refresh {
		err = repin(*modelPath)
	}
	var code []byte
	if err == nil {
		code, err = generateFrom(*modelPath)
	}
	if err == nil {
		err = os.WriteFile(*out, code, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modelgen:", err)
		os.Exit(1)
	}
}

// sourcePath is where a pinned model's provenance is written.
func sourcePath(model string) string {
	return strings.TrimSuffix(strings.TrimSuffix(model, ".gz"), ".json") + ".source"
}

// generateFrom loads the model at path and returns the formatted Go source.
// The header names the pinned copy's botocore version when it is recorded.
func generateFrom(path string) ([]byte, error) {
	source := "model file " + filepath.Base(path)
	if b, err := os.ReadFile(sourcePath(path)); err == nil {
		source = strings.TrimSpace(string(b))
	}
	m, err := loadModel(path)
	if err != nil {
		return nil, err
	}
	return generate(m, source)
}

// repin copies the installed botocore's EFS model to path and records its
// version beside it.
func repin(path string) error {
	dir, version, err := botocore.Locate()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(botocoreModel)))
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return err
	}
	src := "botocore " + version + " " + botocoreModel + "\n"
	return os.WriteFile(sourcePath(path), []byte(src), 0o644)
}
