package core

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// Named is what a [Registry] holds: a value that knows its own name.
type Named interface {
	Name() string
}

// Registry maps names to plug-ins of one kind. Its zero value is an empty
// registry; [NewRegistry] also names the kind ("transport", "codec") for
// error messages. A Registry is safe for concurrent use.
type Registry[T Named] struct {
	kind  string
	mu    sync.RWMutex
	byID  map[string]T
	deflt string
}

// NewRegistry returns an empty registry; kind ("transport", "codec") is used in
// error messages.
func NewRegistry[T Named](kind string) *Registry[T] {
	return &Registry[T]{kind: kind}
}

// Transports is the default transport registry. The packages under
// github.com/tetherkit/tether/transports register themselves here from init,
// and github.com/tetherkit/tether/transports/all makes "unix" the default.
var Transports = NewRegistry[Transport]("transport")

// Codecs is the default codec registry. The packages under
// github.com/tetherkit/tether/codecs register themselves here from init, and
// github.com/tetherkit/tether/codecs/all makes "line" the default.
var Codecs = NewRegistry[Codec]("codec")

func (r *Registry[T]) kindName() string {
	if r.kind == "" {
		return "plug-in"
	}
	return r.kind
}

// Register adds v under v.Name(). It panics if v is nil, its name is empty, or
// the name is already taken: a silent replacement would hide a bug.
func (r *Registry[T]) Register(v T) {
	if isNil(v) {
		panic(fmt.Sprintf("tether: Register of a nil %s", r.kindName()))
	}
	name := v.Name()
	if name == "" {
		panic(fmt.Sprintf("tether: Register of a %s with an empty name", r.kindName()))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byID[name]; dup {
		panic(fmt.Sprintf("tether: Register called twice for %s %q", r.kindName(), name))
	}
	if r.byID == nil {
		r.byID = make(map[string]T)
	}
	r.byID[name] = v
}

// Lookup returns the plug-in registered under name, or an [*UnknownNameError]
// that lists the registered names.
func (r *Registry[T]) Lookup(name string) (T, error) {
	r.mu.RLock()
	v, ok := r.byID[name]
	r.mu.RUnlock()
	if !ok {
		return v, &UnknownNameError{Kind: r.kindName(), Name: name, Known: r.Names()}
	}
	return v, nil
}

// Names returns the registered names, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.byID))
	for n := range r.byID {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SetDefault makes name the registry's default: what a program uses when
// the user names none. A later call replaces an earlier one, so a program
// may make its own plug-in the default after importing the built-ins. The
// name need not be registered yet; [Registry.Default] checks it.
func (r *Registry[T]) SetDefault(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deflt = name
}

// DefaultName returns the default's name, or "" when none was set.
func (r *Registry[T]) DefaultName() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.deflt
}

// Default returns the default plug-in, or an error saying that none is set
// or that the default is not registered.
func (r *Registry[T]) Default() (T, error) {
	name := r.DefaultName()
	if name == "" {
		var zero T
		return zero, fmt.Errorf("no default %s is set: name one (registered: %v)", r.kindName(), r.Names())
	}
	return r.Lookup(name)
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Interface, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
