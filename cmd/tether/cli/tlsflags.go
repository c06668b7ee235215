package cli

import (
	"flag"

	"github.com/tetherkit/tether/core"
	tlst "github.com/tetherkit/tether/transports/tls"
)

// tlsFlags are the --tls-* flags. They configure the "tls" transport, which
// is registered without certificates.
type tlsFlags struct {
	files tlst.Files
}

func (f *tlsFlags) register(fs *flag.FlagSet, server bool) {
	fs.StringVar(&f.files.Cert, "tls-cert", "", "tls: this side's certificate (PEM)")
	fs.StringVar(&f.files.Key, "tls-key", "", "tls: this side's private key (PEM)")
	fs.StringVar(&f.files.CA, "tls-ca", "", "tls: CA certificates to trust for the other side (default: the system's)")
	if server {
		fs.BoolVar(&f.files.RequireClientCert, "tls-client-auth", false, "tls: require a client certificate signed by --tls-ca")
	} else {
		fs.StringVar(&f.files.ServerName, "tls-server-name", "", "tls: name to check the server's certificate against (default: the address's host)")
	}
}

// configure replaces an unconfigured "tls" target's transport with one that
// carries the certificates of the flags.
func (f *tlsFlags) configure(tgt *core.Target, server bool) error {
	t, ok := tgt.Transport.(tlst.Transport)
	if !ok {
		return nil
	}
	var err error
	if server {
		t.Server, err = f.files.ServerConfig()
	} else {
		t.Client, err = f.files.ClientConfig()
	}
	if err != nil {
		return usageError{err}
	}
	tgt.Transport = t
	return nil
}
