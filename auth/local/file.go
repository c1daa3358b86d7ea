package local

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/ftpsgate/ftpsgate/auth"
)

// File is the users file as it is stored: the YAML
//
//	users:
//	  alice:
//	    password: $argon2id$v=19$m=65536,t=3,p=4$...$...
//	    groups: [partners]
//	    factors: [password, totp]
//	    totp_secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
//	    password_changed: 2026-11-01T10:00:00Z
//
// Edit hands one to its function; the Store reads one at every load.
type File struct {
	Users map[string]*User
}

// User is one entry of the users file. An entry without Password is a
// profile only: the second factors and backend mapping of a user whom
// another provider (LDAP, tokens) authenticates.
type User struct {
	Password            string    // password: Argon2id PHC string
	Groups              []string  // groups
	Disabled            bool      // disabled
	Factors             []string  // factors: auth.Factor* names
	TOTPSecret          string    // totp_secret: base32, at least 128 bits
	Pins                []string  // pins: "sha256/BASE64" or 64 hex digits of SHA-256(SPKI)
	BackendUser         string    // backend_user
	BackendPasswordFile string    // backend_password_file
	BackendPasswordEnv  string    // backend_password_env
	PasswordChanged     time.Time // password_changed: RFC 3339
	PasswordHistory     []string  // password_history: previous PHC strings, newest first
}

// The user keys, in the order they are written.
const (
	keyPassword            = "password"
	keyGroups              = "groups"
	keyDisabled            = "disabled"
	keyFactors             = "factors"
	keyTOTPSecret          = "totp_secret"
	keyPins                = "pins"
	keyBackendUser         = "backend_user"
	keyBackendPasswordFile = "backend_password_file"
	keyBackendPasswordEnv  = "backend_password_env"
	keyPasswordChanged     = "password_changed"
	keyPasswordHistory     = "password_history"
)

// maxFileSize bounds the users file read.
const maxFileSize = 16 << 20

// minTOTPSecret is RFC 4226 R6's shortest shared secret, in bytes.
const minTOTPSecret = 16

// Parse reads a users file's content. Every problem names the user and
// key (users.NAME.KEY) and its line; no message quotes a password, hash or
// secret. An empty document is a file without users.
func Parse(data []byte) (*File, error) {
	f := &File{Users: map[string]*User{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("users file: %s", yamlErr(err))
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	if isNull(root) {
		return f, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("users file (line %d): want a mapping with the key users", root.Line)
	}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "users" {
			errs = append(errs, fmt.Errorf("users file (line %d): unknown key %q", k.Line, k.Value))
			continue
		}
		if isNull(v) {
			continue
		}
		if v.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("users (line %d): want a mapping of user names", v.Line))
			continue
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			name, body := v.Content[j], v.Content[j+1]
			if _, dup := f.Users[name.Value]; dup {
				errs = append(errs, fmt.Errorf("users (line %d): user %q given twice", name.Line, name.Value))
				continue
			}
			u, err := parseUser(name, body)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f.Users[name.Value] = u
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// yamlErr is a YAML syntax error. Parsing into a node quotes no values
// (those are decoded key by key here, without quoting them).
func yamlErr(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func parseUser(nameNode, body *yaml.Node) (*User, error) {
	name := nameNode.Value
	if err := CheckUserName(name); err != nil {
		return nil, fmt.Errorf("users (line %d): %w", nameNode.Line, err)
	}
	at := func(key string, n *yaml.Node, format string, a ...any) error {
		return fmt.Errorf("users.%s.%s (line %d): %s", name, key, n.Line, fmt.Sprintf(format, a...))
	}
	if body.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("users.%s (line %d): want a mapping", name, body.Line)
	}
	u := &User{}
	var errs []error
	str := func(key string, n *yaml.Node, dst *string) {
		if n.Kind != yaml.ScalarNode || isNull(n) {
			errs = append(errs, at(key, n, "want a string"))
			return
		}
		*dst = n.Value
	}
	list := func(key string, n *yaml.Node, dst *[]string) {
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			errs = append(errs, at(key, n, "want a list of strings"))
			return
		}
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || isNull(c) {
				errs = append(errs, at(key, c, "want a list of strings"))
				return
			}
			*dst = append(*dst, c.Value)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], body.Content[i+1]
		if seen[k.Value] {
			errs = append(errs, at(k.Value, k, "given twice"))
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case keyPassword:
			str(k.Value, v, &u.Password)
		case keyGroups:
			list(k.Value, v, &u.Groups)
		case keyDisabled:
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&u.Disabled) != nil {
				errs = append(errs, at(k.Value, v, "want true or false"))
			}
		case keyFactors:
			list(k.Value, v, &u.Factors)
		case keyTOTPSecret:
			str(k.Value, v, &u.TOTPSecret)
		case keyPins:
			list(k.Value, v, &u.Pins)
		case keyBackendUser:
			str(k.Value, v, &u.BackendUser)
		case keyBackendPasswordFile:
			str(k.Value, v, &u.BackendPasswordFile)
		case keyBackendPasswordEnv:
			str(k.Value, v, &u.BackendPasswordEnv)
		case keyPasswordChanged:
			var s string
			str(k.Value, v, &s)
			if s != "" {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					errs = append(errs, at(k.Value, v, "want an RFC 3339 time such as 2026-11-01T10:00:00Z"))
				}
				u.PasswordChanged = t
			}
		case keyPasswordHistory:
			list(k.Value, v, &u.PasswordHistory)
		default:
			errs = append(errs, fmt.Errorf("users.%s (line %d): unknown key %q", name, k.Line, k.Value))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := u.validate(name); err != nil {
		return nil, err
	}
	return u, nil
}

// CheckUserName refuses names no FTP client can send or a log cannot show
// plainly: empty, over 255 bytes, not UTF-8, with spaces or control
// characters.
func CheckUserName(name string) error {
	if name == "" || len(name) > 255 || !utf8.ValidString(name) {
		return fmt.Errorf("user name %q: want 1 to 255 bytes of UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("user name %q: contains a space or control character", name)
		}
	}
	return nil
}

var knownFactors = []string{auth.FactorPassword, auth.FactorTOTP, auth.FactorClientCert, auth.FactorToken}

// validate checks the values of u's keys; it names user and key.
func (u *User) validate(name string) error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("users.%s.%s: %s", name, key, fmt.Sprintf(format, a...)))
	}
	if u.Password != "" {
		if _, err := ParseHash(u.Password); err != nil {
			bad(keyPassword, "%v", err)
		}
	}
	for i, h := range u.PasswordHistory {
		if _, err := ParseHash(h); err != nil {
			bad(keyPasswordHistory, "entry %d: %v", i+1, err)
		}
	}
	for _, g := range u.Groups {
		if g == "" || strings.ContainsFunc(g, unicode.IsControl) {
			bad(keyGroups, "an empty group name or one with a control character")
		}
	}
	for i, f := range u.Factors {
		if !slices.Contains(knownFactors, f) {
			bad(keyFactors, "unknown factor %q (known: %s)", f, strings.Join(knownFactors, ", "))
		}
		if slices.Contains(u.Factors[:i], f) {
			bad(keyFactors, "factor %q given twice", f)
		}
	}
	if u.TOTPSecret != "" {
		if _, err := DecodeTOTPSecret(u.TOTPSecret); err != nil {
			bad(keyTOTPSecret, "%v", err)
		}
	}
	for i, p := range u.Pins {
		if _, err := ParsePin(p); err != nil {
			bad(keyPins, "entry %d: %v", i+1, err)
		}
	}
	if strings.ContainsFunc(u.BackendUser, unicode.IsControl) {
		bad(keyBackendUser, "contains a control character")
	}
	if u.BackendPasswordFile != "" && u.BackendPasswordEnv != "" {
		bad(keyBackendPasswordFile, "give backend_password_file or backend_password_env, not both")
	}
	return errors.Join(errs...)
}

// DecodeTOTPSecret decodes a base32 TOTP secret (padding optional, any
// case, as authenticator apps spell it) and refuses one shorter than 128
// bits (RFC 4226 R6). Errors do not quote the secret.
func DecodeTOTPSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.TrimRight(s, "="))
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return nil, errors.New("not base32")
	}
	if len(b) < minTOTPSecret {
		return nil, fmt.Errorf("%d bits is shorter than the 128 that RFC 4226 requires", 8*len(b))
	}
	return b, nil
}

// ParsePin parses a certificate pin: "sha256/" and the base64 of the
// SHA-256 of the certificate's SubjectPublicKeyInfo (as HPKP and curl's
// --pinnedpubkey write it), or those 32 bytes as 64 hex digits.
func ParsePin(s string) ([32]byte, error) {
	var pin [32]byte
	var b []byte
	var err error
	if rest, ok := strings.CutPrefix(s, "sha256/"); ok {
		b, err = base64.StdEncoding.Strict().DecodeString(rest)
		if err != nil || strings.ContainsAny(rest, "\r\n") {
			return pin, errors.New("want sha256/ and 44 characters of base64")
		}
	} else {
		if len(s) != 64 {
			return pin, errors.New("want sha256/BASE64 or 64 hex digits")
		}
		if b, err = hex.DecodeString(s); err != nil {
			return pin, errors.New("want sha256/BASE64 or 64 hex digits")
		}
	}
	if len(b) != len(pin) {
		return pin, fmt.Errorf("a SHA-256 pin has 32 bytes, not %d", len(b))
	}
	copy(pin[:], b)
	return pin, nil
}

// Pin is the SHA-256 of cert's SubjectPublicKeyInfo, the value ParsePin
// returns for its pin.
func Pin(cert *x509.Certificate) [32]byte {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// FormatPin writes pin as "sha256/BASE64".
func FormatPin(pin [32]byte) string {
	return "sha256/" + base64.StdEncoding.EncodeToString(pin[:])
}

// Marshal writes f as YAML, users sorted by name, keys in a fixed order.
func (f *File) Marshal() ([]byte, error) {
	users := &yaml.Node{Kind: yaml.MappingNode}
	names := make([]string, 0, len(f.Users))
	for n := range f.Users {
		names = append(names, n)
	}
	sort.Strings(names)
	scalar := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	for _, n := range names {
		u := f.Users[n]
		if u == nil {
			u = &User{}
		}
		m := &yaml.Node{Kind: yaml.MappingNode}
		add := func(k string, v *yaml.Node) { m.Content = append(m.Content, scalar(k), v) }
		addStr := func(k, v string) {
			if v != "" {
				add(k, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
			}
		}
		addList := func(k string, vs []string, flow bool) {
			if len(vs) == 0 {
				return
			}
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			if flow {
				seq.Style = yaml.FlowStyle
			}
			for _, v := range vs {
				seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
			}
			add(k, seq)
		}
		addStr(keyPassword, u.Password)
		addList(keyGroups, u.Groups, true)
		if u.Disabled {
			add(keyDisabled, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
		addList(keyFactors, u.Factors, true)
		addStr(keyTOTPSecret, u.TOTPSecret)
		addList(keyPins, u.Pins, false)
		addStr(keyBackendUser, u.BackendUser)
		addStr(keyBackendPasswordFile, u.BackendPasswordFile)
		addStr(keyBackendPasswordEnv, u.BackendPasswordEnv)
		if !u.PasswordChanged.IsZero() {
			addStr(keyPasswordChanged, u.PasswordChanged.UTC().Format(time.RFC3339))
		}
		addList(keyPasswordHistory, u.PasswordHistory, false)
		users.Content = append(users.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: n}, m)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{
		Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("users"), users},
	}}}
	var buf bytes.Buffer
	buf.WriteString("# ftpsgate users file: edit with \"ftpsgate users\"; comments are not kept.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
