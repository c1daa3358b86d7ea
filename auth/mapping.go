package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"slices"
	"strings"
)

// checkCert says why the client's certificate does not satisfy the
// client_cert factor, or "" when it does: with pins, its key must be one of
// them (a CA chain is not needed); without, it must have been verified
// against the client CA.
func checkCert(r Request, p Profile) string {
	if r.ClientCert == nil {
		return "client certificate required"
	}
	if len(p.Pins) > 0 {
		if !PinMatches(r.ClientCert, p.Pins) {
			return "client certificate does not match the user's pins"
		}
		return ""
	}
	if !r.ClientCertVerified {
		return "client certificate not verified by the client CA and no pin configured"
	}
	return ""
}

// PinMatches says whether cert's SubjectPublicKeyInfo hashes to one of pins.
func PinMatches(cert *x509.Certificate, pins [][32]byte) bool {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	ok := 0
	for _, pin := range pins {
		ok |= subtle.ConstantTimeCompare(sum[:], pin[:])
	}
	return ok == 1
}

// mapping is the backend account: the profile's, the first group's that
// names one, else the default.
func (g *Gateway) mapping(p Profile, id Identity, a attempt) Credentials {
	if p.BackendUser != "" || p.BackendPassword != "" {
		return Credentials{User: orName(p.BackendUser, id.User), Password: p.BackendPassword}
	}
	for _, gr := range g.Groups {
		if (gr.BackendUser != "" || gr.BackendPassword != "") && slices.Contains(id.Groups, gr.Name) {
			return Credentials{User: orName(gr.BackendUser, id.User), Password: gr.BackendPassword}
		}
	}
	c := Credentials{User: orName(g.BackendUser, id.User), Password: g.BackendPassword}
	if g.ForwardPassword && id.Factor == FactorPassword {
		c.Password = a.secret
	}
	return c
}

// orName is name, or the edge user's name when name is empty; "%s" in
// name stands for the edge user's name.
func orName(name, user string) string {
	if name == "" {
		return user
	}
	return strings.ReplaceAll(name, "%s", user)
}
