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

// Registry maps names to plug-ins of one kind. The zero value is not usable;
// create one with [NewRegistry]. A Registry is safe for concurrent use.
type Registry[T Named] struct {
	kind string
	mu   sync.RWMutex
	byID map[string]T
}

// NewRegistry returns an empty registry; kind ("transport", "codec") is used in
// error messages.
func NewRegistry[T Named](kind string) *Registry[T] {
	return &Registry[T]{kind: kind, byID: make(map[string]T)}
}

// Transports is the default transport registry. The packages under
// github.com/tetherkit/tether/transports register themselves here from init.
var Transports = NewRegistry[Transport]("transport")

// Codecs is the default codec registry. The packages under
// github.com/tetherkit/tether/codecs register themselves here from init.
var Codecs = NewRegistry[Codec]("codec")

// Register adds v under v.Name(). It panics if v is nil, its name is empty, or
// the name is already taken: a silent replacement would hide a bug.
func (r *Registry[T]) Register(v T) {
	if isNil(v) {
		panic(fmt.Sprintf("tether: Register of a nil %s", r.kind))
	}
	name := v.Name()
	if name == "" {
		panic(fmt.Sprintf("tether: Register of a %s with an empty name", r.kind))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byID[name]; dup {
		panic(fmt.Sprintf("tether: Register called twice for %s %q", r.kind, name))
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
		return v, &UnknownNameError{Kind: r.kind, Name: name, Known: r.Names()}
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
