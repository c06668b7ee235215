package core_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tetherkit/tether/core"
)

type fakeCodec struct {
	core.Codec
	name string
}

func (f *fakeCodec) Name() string { return f.name }

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
}

func TestRegistry(t *testing.T) {
	r := core.NewRegistry[core.Codec]("codec")
	r.Register(&fakeCodec{name: "zeta"})
	r.Register(&fakeCodec{name: "alpha"})
	mustPanic(t, "duplicate Register", func() { r.Register(&fakeCodec{name: "zeta"}) })
	mustPanic(t, "nil Register", func() { r.Register(nil) })
	mustPanic(t, "typed nil Register", func() { r.Register((*fakeCodec)(nil)) })
	mustPanic(t, "empty name Register", func() { r.Register(&fakeCodec{}) })

	if c, err := r.Lookup("alpha"); err != nil || c.Name() != "alpha" {
		t.Fatalf("Lookup(alpha) = %v, %v", c, err)
	}
	_, err := r.Lookup("nope")
	var unknown *core.UnknownNameError
	if !errors.As(err, &unknown) {
		t.Fatalf("Lookup(nope): got %v, want *UnknownNameError", err)
	}
	if got := strings.Join(unknown.Known, ","); got != "alpha,zeta" {
		t.Fatalf("known names %q, want sorted alpha,zeta", got)
	}
	if !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "alpha, zeta") {
		t.Fatalf("error %q should name the unknown name and the valid ones", err)
	}
}
