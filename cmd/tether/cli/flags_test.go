package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testApp is an App with captured output and no input.
func testApp() (*App, *bytes.Buffer) {
	a := New()
	var errOut bytes.Buffer
	a.Stdin, a.Stdout, a.Stderr = strings.NewReader(""), &bytes.Buffer{}, &errOut
	a.IsTerminal = func() bool { return false }
	return a, &errOut
}

// runGuarded runs a command with a context that has already ended (so a
// command that would do real work returns at once), turning a panic into a
// test failure.
func runGuarded(t *testing.T, args []string) (code int, stderr string) {
	t.Helper()
	a, errOut := testApp()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%v panicked: %v", args, p)
		}
	}()
	done := make(chan int, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%v panicked: %v", args, p)
				done <- -1
			}
		}()
		done <- a.Run(ctx, args)
	}()
	select {
	case code = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%v did not return within 20s", args)
	}
	return code, errOut.String()
}

// bound is one value to try for a flag, and whether it is valid.
type bound struct {
	value string
	valid bool
}

// bounds returns the values every numeric flag is tried with: 0, -1, the
// largest value, one past it, overflow and garbage.
func bounds(v flag.Value) []bound {
	switch f := v.(type) {
	case *sizeFlag:
		return []bound{{"0", f.min <= 0}, {"-1", false}, {strconv.FormatInt(f.max, 10), true}, {strconv.FormatInt(f.max+1, 10), false},
			{"8589934593GiB", false}, {"9223372036854775808", false}, {"1.5MiB", false}, {"lots", false}, {"", false}}
	case *durationFlag:
		return []bound{{"0", f.min <= 0}, {"-1s", false}, {f.max.String(), true}, {(f.max + time.Nanosecond).String(), false},
			{"9999999999h", false}, {"10", false}, {"soon", false}, {"", false}}
	case *countFlag:
		return []bound{{"0", f.min <= 0}, {"-1", false}, {strconv.Itoa(f.max), true}, {strconv.Itoa(f.max + 1), false},
			{"9223372036854775808", false}, {"3.5", false}, {"many", false}, {"", false}}
	}
	return nil
}

// TestEveryNumericFlagAtItsBounds runs each command with each of its
// numeric flags (found from the flag sets, so a new flag is tried too) at
// its boundary values: a bad value is refused before any work, with exit
// status 2 and the flag's name; a good one is taken; nothing panics.
func TestEveryNumericFlagAtItsBounds(t *testing.T) {
	dir, err := os.MkdirTemp("", "tfl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	a, _ := testApp()
	commands := []struct {
		name string
		fs   func() *flag.FlagSet
		base []string
	}{
		{"serve", func() *flag.FlagSet { fs, _ := a.serveFlags(); return fs }, []string{"--addr", sock}},
		{"connect", func() *flag.FlagSet { fs, _ := a.connectFlags(); return fs }, []string{"--addr", sock}},
		{"bench", func() *flag.FlagSet { fs, _ := a.benchFlags(); return fs }, nil},
	}
	tried := 0
	for _, c := range commands {
		c.fs().VisitAll(func(fl *flag.Flag) {
			for _, b := range bounds(fl.Value) {
				args := append([]string{c.name}, c.base...)
				if c.name == "bench" && fl.Name == "size" && b.valid {
					args = append(args, "--max-frame", "1GiB") // the largest size needs the largest frame
				}
				args = append(args, "--"+fl.Name+"="+b.value)
				code, stderr := runGuarded(t, args)
				tried++
				switch {
				case !b.valid && (code != 2 || !strings.Contains(stderr, "-"+fl.Name)):
					t.Errorf("%v: exit %d, stderr %q; want 2 and the flag's name", args, code, stderr)
				case b.valid && code == 2:
					t.Errorf("%v: a valid value was refused: %s", args, stderr)
				}
			}
		})
	}
	if tried < 100 {
		t.Fatalf("only %d runs: the numeric flags were not found", tried)
	}
}

// TestOtherFlagsRefuseGarbage: names, levels, codecs, transports and the
// transports' options refuse what they cannot use, with exit status 2.
func TestOtherFlagsRefuseGarbage(t *testing.T) {
	dir, err := os.MkdirTemp("", "tfl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	for _, args := range [][]string{
		{"serve", "--addr", sock, "--names", "nicknames"},
		{"serve", "--addr", sock, "--log-level", "loud"},
		{"serve", "--addr", sock, "--codec", "json"},
		{"connect", "--transport", "pigeon"},
		{"serve", "--addr", sock, "--socket-mode", "0"},
		{"serve", "--addr", sock, "--socket-mode", "1777"},
		{"serve", "--addr", sock, "--socket-group", "no-such-group-anywhere"},
		{"serve", "--addr", sock, "--allow-uid", "-1"},
		{"serve", "--addr", sock, "--allow-uid", "99999999999"},
		{"serve", "--addr", "127.0.0.1:0", "--allow-net", "10.0.0.0/99"},
		{"serve", "--addr", "vsock://any:5000", "--allow-cid", "any"},
		{"serve", "--addr", "tls://127.0.0.1:0", "--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.key")},
		{"serve", "--addr", "tls://127.0.0.1:0", "--tls-client-auth=maybe"},
		{"serve", "--addr", sock, "--tls-cert", "x.pem"},
		{"serve", "--addr", sock, "--listen", "unix://" + sock + "?color=blue"},
		{"serve", "--addr", "unix://tmp/x.sock"},
		{"connect", "--addr", "tcp://127.0.0.1:99999"},
		{"connect", "--addr", "unix:///x%zz"},
		{"doctor", "--hvsock-dir"},
		{"bench", "--size", "2000000"},
		{"bench", "--transport", "vsock"},
		{"serve", "--addr", sock, "--room", ""},
		{"serve", "--addr", sock, "--room", "a.b"},
		{"serve", "--addr", sock, "--room", strings.Repeat("r", 65)},
		{"serve", "--addr", sock, "--listen", "unix://" + sock + "x?room=no%20spaces"},
		{"connect", "--addr", "unix://" + sock + "?room=vms"},
		{"bridge", "unix://" + sock + "?room=vms", "unix://" + sock + "y"},
		{"frobnicate"},
	} {
		code, stderr := runGuarded(t, args)
		if code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a reason", args, code, stderr)
		}
	}
}

// fuzzFlag checks that Set never panics, that what it accepts is within
// bounds, and that String gives a text Set reads back to the same value.
func fuzzFlag[F interface {
	flag.Value
	*T
}, T any](t *testing.T, s string, fresh func() F, within func(F) bool, same func(a, b F) bool) {
	f := fresh()
	if f.Set(s) != nil {
		return
	}
	if !within(f) {
		t.Fatalf("Set(%q) accepted a value out of bounds: %s", s, f.String())
	}
	g := fresh()
	if err := g.Set(f.String()); err != nil || !same(f, g) {
		t.Fatalf("Set(%q) gave %s, which reads back as %s, %v", s, f.String(), g.String(), err)
	}
}

func FuzzSizeFlag(f *testing.F) {
	for _, s := range []string{"1", "64KiB", "4MiB", "1GiB", "0", "-1", "8589934593GiB", "1099511627776", "9223372036854775807B", " 5 K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fuzzFlag(t, s, func() *sizeFlag { return &sizeFlag{min: 1, max: maxBudget} },
			func(v *sizeFlag) bool { return v.v >= 1 && v.v <= maxBudget },
			func(a, b *sizeFlag) bool { return a.v == b.v })
	})
}

func FuzzDurationFlag(f *testing.F) {
	for _, s := range []string{"0", "1ms", "10s", "24h", "24h0m0.000000001s", "-1s", "9999999999h", "1.5h", "1h1m1s1ms1us1ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fuzzFlag(t, s, func() *durationFlag { return &durationFlag{max: maxTimeout} },
			func(v *durationFlag) bool { return v.v >= 0 && v.v <= maxTimeout },
			func(a, b *durationFlag) bool { return a.v == b.v })
	})
}

func FuzzCountFlag(f *testing.F) {
	for _, s := range []string{"0", "1", "4096", "1048576", "1048577", "-1", "9223372036854775808", "0x10", "+5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fuzzFlag(t, s, func() *countFlag { return &countFlag{max: maxPeers} },
			func(v *countFlag) bool { return v.v >= 0 && v.v <= maxPeers },
			func(a, b *countFlag) bool { return a.v == b.v })
	})
}
