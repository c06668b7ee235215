// Package examples_test runs the tests of the examples that live in modules
// of their own, as a user's plug-in does: from the repository's one test
// command.
package examples_test

import (
	"os/exec"
	"testing"
)

// TestScrambleModule runs the scramble example's tests in its own module
// (examples/scramble/go.mod, which uses this checkout of tether): a
// transport written against the public API only passes the conformance
// suite and runs the whole command line.
func TestScrambleModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a separate module")
	}
	args := []string{"test", "-count=1"}
	if raceEnabled {
		args = append(args, "-race")
	}
	for _, cmd := range [][]string{{"vet", "./..."}, append(args, "./...")} {
		c := exec.Command("go", cmd...)
		c.Dir = "scramble"
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("go %v in examples/scramble: %v\n%s", cmd, err, out)
		}
		t.Logf("go %v in examples/scramble:\n%s", cmd, out)
	}
}
