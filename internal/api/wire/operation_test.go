package wire

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestPatternsRegisterTogether(t *testing.T) {
	mux := http.NewServeMux()
	seen := map[string]string{}
	for _, op := range Operations {
		for _, p := range op.Patterns() {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s: registering %q panicked: %v", op.Name, p, r)
					}
				}()
				mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
			}()
			seen[p] = op.Name
		}
	}
	if len(Operations) != 31 {
		t.Errorf("len(Operations) = %d, want 31 (EFS 2015-02-01)", len(Operations))
	}
	if seen["GET /2015-02-01/tags/{FileSystemId}/{$}"] != "DescribeTags" || seen["GET /2015-02-01/tags/{FileSystemId}"] != "DescribeTags" {
		t.Errorf("DescribeTags patterns = %v", mustOp(t, "DescribeTags").Patterns())
	}
}

func TestRoutesResolveToTheirOperation(t *testing.T) {
	mux := http.NewServeMux()
	for _, op := range Operations {
		for _, p := range op.Patterns() {
			mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
		}
	}
	// Fill each URI's labels with a sample value and check the mux picks the
	// operation's own pattern, e.g. the literal .../replication-configurations
	// wins over .../{FileSystemId}.
	for _, op := range Operations {
		path := op.URI
		for strings.Contains(path, "{") {
			i, j := strings.Index(path, "{"), strings.Index(path, "}")
			path = path[:i] + "fs-01234567" + path[j+1:]
		}
		req, _ := http.NewRequest(op.Method, path, nil)
		if _, pattern := mux.Handler(req); !slices.Contains(op.Patterns(), pattern) {
			t.Errorf("%s %s routed to %q, want one of %v", op.Method, path, pattern, op.Patterns())
		}
	}
}

func mustOp(t *testing.T, name string) Operation {
	t.Helper()
	op, ok := OperationByName(name)
	if !ok {
		t.Fatalf("OperationByName(%q) not found", name)
	}
	return op
}

func TestOperationTable(t *testing.T) {
	op := mustOp(t, "CreateFileSystem")
	if op.Method != "POST" || op.URI != "/2015-02-01/file-systems" || op.SuccessStatus != 201 ||
		op.Input != "CreateFileSystemRequest" || op.Output != "FileSystemDescription" || !slices.Contains(op.Errors, "FileSystemAlreadyExists") {
		t.Errorf("CreateFileSystem = %+v", op)
	}
	if op := mustOp(t, "DeleteFileSystem"); op.SuccessStatus != 204 || op.Output != "" || op.Deprecated {
		t.Errorf("DeleteFileSystem = %+v", op)
	}
	if op := mustOp(t, "CreateTags"); !op.Deprecated {
		t.Errorf("CreateTags not deprecated")
	}
	if _, ok := OperationByName("Nope"); ok {
		t.Errorf("OperationByName(Nope) found")
	}
	if Operations[0].Name != "CreateAccessPoint" || Operations[len(Operations)-1].Name != "UpdateFileSystemProtection" {
		t.Errorf("operations not in model order")
	}
}

func TestErrorTable(t *testing.T) {
	e, ok := LookupError("FileSystemAlreadyExists")
	if !ok || e.Status != 409 || !slices.Equal(e.Members, []string{"FileSystemId"}) {
		t.Errorf("FileSystemAlreadyExists = %+v, %v", e, ok)
	}
	for code, status := range map[string]int{"BadRequest": 400, "FileSystemNotFound": 404, "InternalServerError": 500,
		"ThrottlingException": 429, "InsufficientThroughputCapacity": 503, "DependencyTimeout": 504} {
		if e, ok := LookupError(code); !ok || e.Status != status || e.Code != code || len(e.Members) != 0 {
			t.Errorf("LookupError(%s) = %+v, %v; want status %d", code, e, ok, status)
		}
	}
	// Every error an operation names is in the table.
	for _, op := range Operations {
		for _, code := range op.Errors {
			if _, ok := LookupError(code); !ok {
				t.Errorf("%s error %s missing from the table", op.Name, code)
			}
		}
	}
	if _, ok := LookupError("Nope"); ok {
		t.Errorf("LookupError(Nope) found")
	}
}

func TestEnums(t *testing.T) {
	if !slices.Equal(EnumPerformanceMode, []string{"generalPurpose", "maxIO"}) {
		t.Errorf("EnumPerformanceMode = %v", EnumPerformanceMode)
	}
	if !slices.Equal(EnumThroughputMode, []string{"bursting", "provisioned", "elastic"}) {
		t.Errorf("EnumThroughputMode = %v", EnumThroughputMode)
	}
}
