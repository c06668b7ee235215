// Package zerotest checks that an exported type's zero value, and a value
// used after Close, answer every method with a result rather than a panic
// or a hang: the misuse a new user commits first.
package zerotest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// Calls calls every exported method of v (a pointer) with simple
// arguments: a context that ends in half a second, "x" for strings and
// byte slices, zero for the rest. Each call must return within two seconds
// without panicking. skip names methods that block by design ("Receive").
func Calls(t *testing.T, v any, skip ...string) {
	t.Helper()
	rv := reflect.ValueOf(v)
	typ := rv.Type()
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		if contains(skip, m.Name) {
			continue
		}
		name := fmt.Sprintf("%v.%s", typ, m.Name)
		args := make([]reflect.Value, m.Type.NumIn()-1)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		for j := range args {
			args[j] = arg(ctx, m.Type.In(j+1))
		}
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }()
			if m.Type.IsVariadic() {
				rv.Method(i).CallSlice(args)
			} else {
				rv.Method(i).Call(args)
			}
		}()
		select {
		case p := <-done:
			if p != nil {
				t.Errorf("%s panicked: %v", name, p)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s did not return within 2s", name)
		}
		cancel()
	}
}

var ctxType = reflect.TypeOf((*context.Context)(nil)).Elem()

func arg(ctx context.Context, t reflect.Type) reflect.Value {
	switch {
	case t == ctxType:
		return reflect.ValueOf(ctx)
	case t.Kind() == reflect.String:
		return reflect.ValueOf("x").Convert(t)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return reflect.ValueOf([]byte("x")).Convert(t)
	}
	return reflect.Zero(t)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
