package cli

import (
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/core"
)

// optionFlags offers every registered transport's options as flags of the
// same name (--tls-cert, --allow-uid, --socket-mode), for the commands
// whose use they fit. The CLI knows no transport: what a transport accepts,
// it declares ([core.Configurable]).
type optionFlags struct {
	set     url.Values          // the flags given, by option name
	owners  map[string][]string // option name -> transports that declare it
	options map[string]core.Option
}

func (a *App) registerOptions(fs *flag.FlagSet, use core.Use) *optionFlags {
	o := &optionFlags{set: url.Values{}, owners: map[string][]string{}, options: map[string]core.Option{}}
	for _, name := range a.Transports.Names() {
		t, _ := a.Transports.Lookup(name)
		for _, opt := range core.TransportOptions(t) {
			if opt.Use&use == 0 {
				continue
			}
			if prev, ok := o.options[opt.Name]; ok && prev.Bool != opt.Bool {
				continue // declared differently by two transports: left to the endpoint's query
			}
			if _, ok := o.options[opt.Name]; !ok && fs.Lookup(opt.Name) != nil {
				continue // the name of one of the command's own flags: left to the query
			}
			o.owners[opt.Name] = append(o.owners[opt.Name], name)
			if _, ok := o.options[opt.Name]; !ok {
				o.options[opt.Name] = opt
			}
		}
	}
	for name, opt := range o.options {
		fs.Var(&optionValue{o: o, opt: opt}, name, fmt.Sprintf("%s (%s)", opt.Usage, ownersText(o.owners[name])))
	}
	return o
}

func ownersText(owners []string) string {
	if len(owners) == 1 {
		return "transport " + owners[0]
	}
	return "transports " + strings.Join(owners, ", ")
}

// values returns the options given as flags.
func (o *optionFlags) values() url.Values { return o.set }

// checkUsed refuses an option flag that no target's transport takes, so a
// flag never silently does nothing.
func (o *optionFlags) checkUsed(targets ...core.Target) error {
	for name := range o.set {
		used := slices.ContainsFunc(targets, func(t core.Target) bool {
			return slices.ContainsFunc(core.TransportOptions(t.Transport), func(opt core.Option) bool { return opt.Name == name })
		})
		if !used {
			var names []string
			for _, t := range targets {
				names = append(names, t.Transport.Name())
			}
			return usagef("--%s is an option of %s, and this command uses %s", name, ownersText(o.owners[name]), strings.Join(names, ", "))
		}
	}
	return nil
}

// optionValue is one option's flag.
type optionValue struct {
	o   *optionFlags
	opt core.Option
}

func (v *optionValue) String() string {
	if v == nil || v.o == nil {
		return ""
	}
	return strings.Join(v.o.set[v.opt.Name], ",")
}

func (v *optionValue) Set(s string) error {
	if v.opt.Bool {
		if _, err := strconv.ParseBool(s); err != nil {
			return fmt.Errorf("want true or false")
		}
	}
	if v.opt.Multi {
		v.o.set[v.opt.Name] = append(v.o.set[v.opt.Name], s)
	} else {
		v.o.set[v.opt.Name] = []string{s}
	}
	return nil
}

func (v *optionValue) IsBoolFlag() bool { return v.opt.Bool }
