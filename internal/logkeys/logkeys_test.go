package logkeys

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module root, two levels above this package.
const repoRoot = "../.."

// documentedKeys reads the key table of docs/architecture.md's "Log keys" section: the first
// backquoted word of each table row.
func documentedKeys(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n## Log keys\n")
	if i < 0 {
		t.Fatal(`docs/architecture.md has no "## Log keys" section`)
	}
	section := text[i+1:]
	if j := strings.Index(section[3:], "\n## "); j >= 0 {
		section = section[:j+3]
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z0-9]+)` \\|")
	keys := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		keys[m[1]] = true
	}
	if len(keys) == 0 {
		t.Fatal(`docs/architecture.md's "Log keys" section lists no keys`)
	}
	return keys
}

// keyStart gives, for a logging method, the index of its first key-value argument. Rate is
// fsview's rate-limited client log (the level first).
var keyStart = map[string]int{
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
	"Log": 3, "With": 0,
	"Rate": 2,
	"note": 1, // internal/netlimit's rate-limited warning
}

// funcKeyStart is keyStart for logging functions: internal/nfs's clientInfo and clientDebug take
// the rate-limited log, the message and the connection first.
var funcKeyStart = map[string]int{"clientInfo": 3, "clientDebug": 3}

// attrFuncs are slog's Attr constructors; their first argument is a key.
var attrFuncs = map[string]bool{
	"String": true, "Int": true, "Int64": true, "Uint64": true, "Float64": true, "Bool": true,
	"Time": true, "Duration": true, "Any": true, "Group": true,
}

type use struct {
	key string
	pos token.Position
}

// isAnySlice reports whether t is []any or []interface{}.
func isAnySlice(t ast.Expr) bool {
	at, ok := t.(*ast.ArrayType)
	if !ok || at.Len != nil {
		return false
	}
	if id, ok := at.Elt.(*ast.Ident); ok && id.Name == "any" {
		return true
	}
	it, ok := at.Elt.(*ast.InterfaceType)
	return ok && len(it.Methods.List) == 0
}

// scanKeys finds the string literals used as log keys in one file: key positions of logging calls'
// key-value arguments, of []any literals, of append(x, …) where x is a variable of the file
// declared as ...any or []any or set from a []any literal, and slog Attr constructors' keys. A key
// that is not a literal (a variable) cannot be checked and is skipped.
func scanKeys(fset *token.FileSet, f *ast.File) []use {
	var uses []use
	kv := map[string]bool{} // names of the file's key-value slices
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Field:
			if e, ok := n.Type.(*ast.Ellipsis); ok {
				if id, ok := e.Elt.(*ast.Ident); ok && id.Name == "any" {
					for _, name := range n.Names {
						kv[name.Name] = true
					}
				}
			} else if isAnySlice(n.Type) {
				for _, name := range n.Names {
					kv[name.Name] = true
				}
			}
		case *ast.AssignStmt:
			for i, r := range n.Rhs {
				if cl, ok := r.(*ast.CompositeLit); ok && isAnySlice(cl.Type) && i < len(n.Lhs) {
					if id, ok := n.Lhs[i].(*ast.Ident); ok {
						kv[id.Name] = true
					}
				}
			}
		case *ast.ValueSpec:
			if n.Type != nil && isAnySlice(n.Type) {
				for _, name := range n.Names {
					kv[name.Name] = true
				}
			}
		}
		return true
	})
	pairs := func(args []ast.Expr) {
		for i := 0; i < len(args); {
			lit, ok := args[i].(*ast.BasicLit)
			if ok && lit.Kind == token.STRING {
				k, err := strconv.Unquote(lit.Value)
				if err == nil {
					uses = append(uses, use{k, fset.Position(lit.Pos())})
				}
				i += 2
				continue
			}
			i++ // an slog.Attr, or something only known at run time
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch fun := n.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := fun.X.(*ast.Ident); ok && x.Name == "slog" {
					if attrFuncs[fun.Sel.Name] && len(n.Args) > 0 {
						pairs(n.Args[:1])
					}
					return true
				}
				if s, ok := keyStart[fun.Sel.Name]; ok && len(n.Args) > s && n.Ellipsis == token.NoPos {
					pairs(n.Args[s:])
				} else if ok && len(n.Args) > s {
					pairs(n.Args[s : len(n.Args)-1])
				}
			case *ast.Ident:
				if s, ok := funcKeyStart[fun.Name]; ok && len(n.Args) > s && n.Ellipsis == token.NoPos {
					pairs(n.Args[s:])
				}
				if fun.Name == "append" && len(n.Args) > 1 && n.Ellipsis == token.NoPos {
					if a, ok := n.Args[0].(*ast.Ident); ok && kv[a.Name] {
						pairs(n.Args[1:])
					}
				}
			}
		case *ast.CompositeLit:
			if isAnySlice(n.Type) {
				pairs(n.Elts)
			}
		}
		return true
	})
	return uses
}

// TestLogKeysAreDocumented fails on a log key in internal/ or cmd/ outside the documented set.
func TestLogKeysAreDocumented(t *testing.T) {
	keys := documentedKeys(t)
	fset := token.NewFileSet()
	var bad []string
	seen := map[string]bool{}
	files := 0
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "wire") {
				return filepath.SkipDir // wire is generated and logs nothing
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files++
			for _, u := range scanKeys(fset, f) {
				seen[u.key] = true
				if !keys[u.key] {
					bad = append(bad, u.pos.String()+": "+strconv.Quote(u.key))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files == 0 {
		t.Fatal("no Go sources found")
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("log key outside docs/architecture.md's Log keys: %s", b)
	}
	var unused []string
	for k := range keys {
		if !seen[k] {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("documented log keys no source uses (drop them from docs/architecture.md): %v", unused)
	}
}

// TestScanKeys checks the scanner itself on the shapes efsd's code uses.
func TestScanKeys(t *testing.T) {
	src := `package p
func f(args ...any) {
	l.Info("msg", "a", 1, slog.String("b", "x"), "c", v)
	l.With("d", 1).Error("m", "e", err)
	l.Log(ctx, slog.LevelInfo, "m", "f", 1)
	clientInfo(cl, "m", c, "g", 1)
	args = append(args, "h", 2)
	x := []any{"i", 1, "j", 2}
	x = append(x, "l", 3)
	names = append(names, "not a key")
	n.note("m", "m", 1)
	cl.Rate(slog.LevelInfo, "m", "n", 1)
	l.Warn("m", args...)
	l.Debug("m", "k", 1, rest...)
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range scanKeys(fset, f) {
		got = append(got, u.key)
	}
	sort.Strings(got)
	want := "a b c d e f g h i j k l m n"
	if strings.Join(got, " ") != want {
		t.Errorf("keys = %v, want %s", got, want)
	}
}
