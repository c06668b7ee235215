// Package layout_test holds the repository's rules about who may know whom:
// the engine is a library of interfaces, the built-in transports are
// plug-ins like any other, and the command line knows none of them by name.
package layout_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tetherkit/tether"

// root is the repository's top folder.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", dir, err)
	}
	return dir
}

// files returns the non-test files under dir (relative to the root) whose
// names end in one of exts, skipping testdata and nested modules.
func files(t *testing.T, dir string, exts ...string) []string {
	t.Helper()
	var out []string
	top := filepath.Join(root(t), dir)
	filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if p != top {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if strings.HasSuffix(p, "_test.go") {
			return nil
		}
		for _, e := range exts {
			if strings.HasSuffix(p, e) {
				out = append(out, p)
			}
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatalf("no files under %s", dir)
	}
	return out
}

func imports(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		out = append(out, p)
	}
	return out
}

// TestCoreImportsNoCrypto: TLS is a transport's business; the engine
// imports no crypto package, even indirectly, and none of the libraries
// the packages around it use.
func TestCoreImportsNoCrypto(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/core").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "crypto/") || dep == "crypto" {
			t.Errorf("core depends on %s", dep)
		}
		// NATS, Prometheus and systemd are the business of federation,
		// metrics and the systemd transport: the engine pulls none in.
		for _, outside := range []string{"github.com/nats-io/", "github.com/prometheus/", "github.com/coreos/"} {
			if strings.HasPrefix(dep, outside) {
				t.Errorf("core depends on %s", dep)
			}
		}
	}
}

// TestCoreImportsNoPlugin: the engine knows no transport or codec package.
func TestCoreImportsNoPlugin(t *testing.T) {
	for _, f := range files(t, "core", ".go") {
		for _, imp := range imports(t, f) {
			if strings.HasPrefix(imp, module+"/transports") || strings.HasPrefix(imp, module+"/codecs") {
				t.Errorf("%s imports %s", f, imp)
			}
		}
	}
}

// flagPattern finds a command-line flag such as --codec in text.
var flagPattern = regexp.MustCompile("(^|[\\s\"'(`])--[a-z][a-z-]*")

// TestLibraryMentionsNoFlags: the library speaks in its own terms; flags
// are the command line's, which adds them where it prints errors.
func TestLibraryMentionsNoFlags(t *testing.T) {
	for _, dir := range []string{"core", "codecs", "transports"} {
		for _, f := range files(t, dir, ".go", ".md") {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				if m := flagPattern.FindString(line); m != "" {
					t.Errorf("%s:%d mentions the flag %s", f, i+1, strings.TrimSpace(m))
				}
			}
		}
	}
}

// builtins are the built-in transports' packages.
var builtins = []string{"unix", "tcp", "tlstcp", "vsock", "hvsock"}

// TestCommandNamesNoTransport: the command line gets everything a transport
// offers through optional interfaces, as a user's transport would; only
// the import that registers the built-ins names their package.
func TestCommandNamesNoTransport(t *testing.T) {
	for _, f := range files(t, "cmd", ".go") {
		for _, imp := range imports(t, f) {
			for _, b := range builtins {
				if imp == module+"/transports/"+b {
					t.Errorf("%s imports the %s transport by name; use its optional interfaces", f, b)
				}
			}
		}
	}
}
