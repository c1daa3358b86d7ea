package policy

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// In pins mode the handshake takes any certificate; the chain to the
// client CA is checked apart, so a pinned self-signed certificate and a
// CA-issued one both get through and only the latter counts as verified.
func TestClientCertPinsMode(t *testing.T) {
	ca, err := testpki.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Client("alice")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := testpki.NewCA("self")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := testpki.WritePEM(caFile, 0o644, "CERTIFICATE", ca.DER); err != nil {
		t.Fatal(err)
	}

	base := TLSConfig{ClientAuth: ClientAuthRequire, ClientCertPins: true}
	if err := base.Validate(); err != nil && len(confkeyKeys(err, "client_ca_file")) > 0 {
		t.Fatalf("pins mode without a CA refused: %v", err)
	}
	noPins := TLSConfig{ClientAuth: ClientAuthRequire}
	if len(confkeyKeys(noPins.Validate(), "client_ca_file")) == 0 {
		t.Fatal("client_auth without CA and without pins accepted")
	}
	named := TLSConfig{ClientAuth: ClientAuthRequire, ClientCertPins: true, ClientCertUser: CertUserCN}
	if len(confkeyKeys(named.Validate(), "client_cert_user")) == 0 {
		t.Fatal("client_cert_user without a CA accepted")
	}

	withCA := base
	withCA.ClientCAFile = caFile
	verify, err := withCA.ClientChainVerifier()
	if err != nil || verify == nil {
		t.Fatalf("verifier: %v", err)
	}
	if !verify([]*x509.Certificate{issued.Cert}) {
		t.Error("a certificate issued by the client CA is not verified")
	}
	if verify([]*x509.Certificate{stranger.Cert}) || verify(nil) {
		t.Error("a self-signed certificate or none counts as verified")
	}
	if v, err := base.ClientChainVerifier(); v != nil || err != nil {
		t.Errorf("no CA: verifier %v err %v", v != nil, err)
	}

	store := &CertStore{}
	for _, c := range []struct {
		cfg  TLSConfig
		want tls.ClientAuthType
	}{
		{withCA, tls.RequireAnyClientCert},
		{TLSConfig{ClientAuth: ClientAuthRequest, ClientCertPins: true}, tls.RequestClientCert},
		{TLSConfig{ClientAuth: ClientAuthRequire, ClientCAFile: caFile}, tls.RequireAndVerifyClientCert},
	} {
		sc, err := c.cfg.ServerConfig(store)
		if err != nil {
			t.Fatal(err)
		}
		if sc.ClientAuth != c.want {
			t.Errorf("%+v: ClientAuth %v, want %v", c.cfg, sc.ClientAuth, c.want)
		}
	}
}

func confkeyKeys(err error, key string) []string {
	var out []string
	for _, e := range confkey.List(err) {
		if e.Key == key {
			out = append(out, e.Key)
		}
	}
	return out
}
