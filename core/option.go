package core

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Use says where a transport option applies: to listening, to dialing, to
// diagnosing the machine, or to a mix of them.
type Use uint8

const (
	ForListen   Use = 1 << iota // a listener's setting: socket mode, admission rules, server certificate
	ForDial                     // a dialer's setting: the name to check a certificate against
	ForDiagnose                 // where to look when diagnosing the machine
)

// Option describes one setting a [Configurable] transport accepts. The same
// name is used in an endpoint's query ("unix:///run/chat.sock?socket-mode=0660")
// and by front-ends such as the tether command, which offers each option as
// a flag of that name. Transports that mean the same thing use the same name
// ("allow-net" on every transport that admits by address).
type Option struct {
	Name  string // lower-case words joined by '-', such as "socket-mode"
	Usage string // one line: what it does and what its values look like
	Bool  bool   // a switch: its values are "true" and "false", and given without a value it means true
	Multi bool   // it may be given more than once; the values add up
	Use   Use    // where it applies
}

// Configurable is an optional interface of a [Transport] that takes options.
type Configurable interface {
	// Options lists the options the transport accepts.
	Options() []Option
	// Configure returns a copy of the transport with the options in opts
	// set; options not in opts keep their values, and the receiver is not
	// changed. It checks every value at once and refuses an unknown name or
	// a bad value with an [*OptionError].
	Configure(opts url.Values) (Transport, error)
}

// CheckOptions returns an [*OptionError] for the first name in opts that
// decl does not declare, or for a repeated option that is not Multi; a
// Configure method starts with it. The error lists the valid names.
func CheckOptions(transport string, decl []Option, opts url.Values) error {
	names := make([]string, 0, len(opts))
	for name := range opts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		i := slices.IndexFunc(decl, func(o Option) bool { return o.Name == name })
		if i < 0 {
			return &OptionError{Transport: transport, Option: name, Err: unknownOption(decl)}
		}
		if vals := opts[name]; len(vals) > 1 && !decl[i].Multi {
			return &OptionError{Transport: transport, Option: name, Value: strings.Join(vals, ","), Err: fmt.Errorf("given %d times; it takes one value", len(vals))}
		}
	}
	return nil
}

func unknownOption(decl []Option) error {
	if len(decl) == 0 {
		return fmt.Errorf("unknown option: this transport takes none")
	}
	valid := make([]string, len(decl))
	for i, o := range decl {
		valid[i] = o.Name
	}
	sort.Strings(valid)
	return fmt.Errorf("unknown option; valid: %s", strings.Join(valid, ", "))
}

// TransportOptions returns the options t declares, or nil.
func TransportOptions(t Transport) []Option {
	if c, ok := t.(Configurable); ok {
		return c.Options()
	}
	return nil
}

// Configure applies opts to t, keeping only the options t declares (others
// are left for the transports that do). It returns t unchanged when none
// apply.
func Configure(t Transport, opts url.Values) (Transport, error) {
	c, ok := t.(Configurable)
	if !ok || len(opts) == 0 {
		return t, nil
	}
	mine := url.Values{}
	for _, o := range c.Options() {
		if v, ok := opts[o.Name]; ok {
			mine[o.Name] = v
		}
	}
	if len(mine) == 0 {
		return t, nil
	}
	return c.Configure(mine)
}
