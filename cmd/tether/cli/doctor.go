package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/tetherkit/tether/core"
)

// doctor reports what this machine supports, before the user tries: each
// transport that can tell ([core.Diagnoser]) reads files and asks the
// kernel. Nothing is dialed.
func (a *App) doctor(ctx context.Context, args []string) error {
	fs := a.newFlagSet("doctor", "Say what this machine supports for each transport that can tell (devices, limits,\n"+
		"credentials, sockets found). It never dials anything.")
	opts := a.registerOptions(fs, core.ForDiagnose)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	w := a.Stdout
	fmt.Fprintf(w, "%s doctor: what this machine supports (nothing is dialed)\n\n", a.Name)
	fmt.Fprintf(w, "transports: %s (default %s)\ncodecs:     %s (default %s)\n", joinNames(a.Transports.Names()), orNone(a.Transports.DefaultName()),
		joinNames(a.Codecs.Names()), orNone(a.Codecs.DefaultName()))
	for _, name := range a.Transports.Names() {
		t, _ := a.Transports.Lookup(name)
		t, err := core.Configure(t, opts.values())
		if err != nil {
			return usageError{err}
		}
		d, ok := t.(core.Diagnoser)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", name)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range d.Diagnose(ctx) {
			fmt.Fprintf(tw, "  %s:\t%s\n", f.Topic, f.Text)
		}
		tw.Flush()
	}
	return nil
}
