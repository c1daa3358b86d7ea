package ldap

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
)

// fakeAD answers every bind with invalidCredentials (49) and diag, the
// way Active Directory reports why a bind failed.
func fakeAD(t *testing.T, diag string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				for {
					req, err := ber.ReadPacket(r)
					if err != nil || len(req.Children) < 2 {
						return
					}
					resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
					resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, req.Children[0].Value, "MessageID"))
					br := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 1, nil, "Bind Response")
					br.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 49, "resultCode"))
					br.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
					br.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, "diagnosticMessage"))
					resp.AppendChild(br)
					if _, err := c.Write(resp.Bytes()); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestADSubcodesOverTheWire: an AD-style diagnostic in a real bind
// response reaches the mapping (expired, disabled, denied).
func TestADSubcodesOverTheWire(t *testing.T) {
	const prefix = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data "
	for code, want := range map[string]error{
		"52e": auth.ErrDenied, "532": auth.ErrExpired, "773": auth.ErrExpired,
		"533": auth.ErrDisabled, "701": auth.ErrDisabled, "775": auth.ErrDisabled,
	} {
		addr := fakeAD(t, prefix+code+", v4563\x00")
		p, err := New(Config{URLs: []string{"ldap://" + addr}, AllowCleartext: true,
			BindDNTemplate: "CN=%s,OU=Users,DC=corp,DC=example", Timeout: 2 * time.Second}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Verify(context.Background(), "alice", "pw-zz9")
		if !errors.Is(err, want) {
			t.Errorf("data %s: got %v, want %v", code, err, want)
		}
	}
}
