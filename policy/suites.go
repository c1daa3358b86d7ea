package policy

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// DefaultCipherSuites are the TLS 1.2 suites offered by default: ECDHE key
// exchange with AES-GCM or ChaCha20-Poly1305, nothing else. TLS 1.3 suites
// are all AEAD and not configurable in crypto/tls.
var DefaultCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// DefaultCurves are the key exchanges offered by default, best first.
var DefaultCurves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// ParseCipherSuites maps standard (IANA) suite names to their IDs. Only the
// secure set is accepted: an insecure suite (CBC, RSA key exchange, RC4,
// 3DES, NULL) or an unknown name is an error naming it. TLS 1.3 suite names
// are refused too, since they cannot be chosen.
func ParseCipherSuites(names []string) ([]uint16, error) {
	allowed := map[uint16]bool{}
	for _, id := range DefaultCipherSuites {
		allowed[id] = true
	}
	byName := map[string]*tls.CipherSuite{}
	for _, cs := range tls.CipherSuites() {
		byName[cs.Name] = cs
	}
	insecure := map[string]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = true
	}
	var ids []uint16
	for _, raw := range names {
		name := strings.ToUpper(strings.TrimSpace(raw))
		cs, ok := byName[name]
		switch {
		case insecure[name]:
			return nil, fmt.Errorf("%s is insecure", raw)
		case !ok:
			return nil, fmt.Errorf("%q is not a known cipher suite name", raw)
		case len(cs.SupportedVersions) == 1 && cs.SupportedVersions[0] == tls.VersionTLS13:
			return nil, fmt.Errorf("%s is a TLS 1.3 suite: those are always on and cannot be chosen", raw)
		case !allowed[cs.ID]:
			return nil, fmt.Errorf("%s is refused: only ECDHE with AES-GCM or ChaCha20-Poly1305 is allowed", raw)
		}
		ids = append(ids, cs.ID)
	}
	return ids, nil
}

var curveNames = map[string]tls.CurveID{
	"X25519MLKEM768": tls.X25519MLKEM768,
	"X25519":         tls.X25519,
	"P-256":          tls.CurveP256,
	"SECP256R1":      tls.CurveP256,
	"P256":           tls.CurveP256,
	"P-384":          tls.CurveP384,
	"SECP384R1":      tls.CurveP384,
	"P384":           tls.CurveP384,
	"P-521":          tls.CurveP521,
	"SECP521R1":      tls.CurveP521,
	"P521":           tls.CurveP521,
}

// ParseCurves maps curve names (X25519, P-256 or secp256r1, P-384, P-521,
// X25519MLKEM768) to their IDs.
func ParseCurves(names []string) ([]tls.CurveID, error) {
	var ids []tls.CurveID
	for _, raw := range names {
		id, ok := curveNames[strings.ToUpper(strings.TrimSpace(raw))]
		if !ok {
			return nil, fmt.Errorf("%q is not a supported curve (X25519MLKEM768, X25519, P-256, P-384, P-521)", raw)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func curveName(id tls.CurveID) string {
	switch id {
	case tls.CurveP256:
		return "P-256"
	case tls.CurveP384:
		return "P-384"
	case tls.CurveP521:
		return "P-521"
	}
	return id.String()
}
