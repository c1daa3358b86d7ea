package policy

import (
	"crypto/tls"
	"fmt"
	"slices"
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
// are refused too, since they cannot be chosen. An OpenSSL name
// (ECDHE-RSA-AES128-GCM-SHA256) is refused with its IANA name as a hint.
func ParseCipherSuites(names []string) ([]uint16, error) {
	var ids []uint16
	for _, raw := range names {
		name := strings.ToUpper(strings.TrimSpace(raw))
		if iana, ok := opensslSuiteNames[name]; ok {
			if _, err := checkSuite(fmt.Sprintf("%s (OpenSSL's name of %s)", raw, iana), iana); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%q is an OpenSSL name: did you mean %s? (cipher_suites takes IANA names)", raw, iana)
		}
		id, err := checkSuite(raw, name)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// checkSuite returns the ID of the IANA-named suite name if it may be
// chosen; raw is the name as written, for the error.
func checkSuite(raw, name string) (uint16, error) {
	for _, cs := range tls.InsecureCipherSuites() {
		if cs.Name == name {
			return 0, fmt.Errorf("%s is insecure", raw)
		}
	}
	for _, cs := range tls.CipherSuites() {
		if cs.Name != name {
			continue
		}
		if len(cs.SupportedVersions) == 1 && cs.SupportedVersions[0] == tls.VersionTLS13 {
			return 0, fmt.Errorf("%s is a TLS 1.3 suite: those are always on and cannot be chosen", raw)
		}
		if !slices.Contains(DefaultCipherSuites, cs.ID) {
			return 0, fmt.Errorf("%s is refused: only ECDHE with AES-GCM or ChaCha20-Poly1305 is allowed", raw)
		}
		return cs.ID, nil
	}
	return 0, fmt.Errorf("%q is not a known cipher suite name", raw)
}

// opensslSuiteNames maps OpenSSL's spelling of the TLS 1.2 suites that Go
// knows to their IANA names: the ones allowed, and the common weak ones so
// that those get the same refusal as their IANA names.
var opensslSuiteNames = map[string]string{
	"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",

	"ECDHE-ECDSA-AES128-SHA":    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
	"ECDHE-ECDSA-AES256-SHA":    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
	"ECDHE-ECDSA-AES128-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-RSA-AES128-SHA":      "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	"ECDHE-RSA-AES256-SHA":      "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-AES128-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-RSA-DES-CBC3-SHA":    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
	"ECDHE-RSA-RC4-SHA":         "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
	"ECDHE-ECDSA-RC4-SHA":       "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
	"AES128-GCM-SHA256":         "TLS_RSA_WITH_AES_128_GCM_SHA256",
	"AES256-GCM-SHA384":         "TLS_RSA_WITH_AES_256_GCM_SHA384",
	"AES128-SHA":                "TLS_RSA_WITH_AES_128_CBC_SHA",
	"AES256-SHA":                "TLS_RSA_WITH_AES_256_CBC_SHA",
	"AES128-SHA256":             "TLS_RSA_WITH_AES_128_CBC_SHA256",
	"DES-CBC3-SHA":              "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
	"RC4-SHA":                   "TLS_RSA_WITH_RC4_128_SHA",
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
