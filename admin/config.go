package admin

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Config is the admin section.
type Config struct {
	// Address is where the API listens: "127.0.0.1:9090", "[::1]:9090",
	// "localhost:9090" or "unix:/run/ftpsgate/admin.sock". Empty: no API.
	Address string
	// TokenFile holds the bearer token clients must send. Required on
	// every TCP address, loopback included (any local account can reach
	// loopback); optional on a unix socket, whose mode 0660 is the check.
	TokenFile string
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/,
	// behind the same checks as the API. Off by default: a CPU profile
	// costs the gateway while it runs.
	Pprof bool
}

// Enabled reports whether the API is configured.
func (c Config) Enabled() bool { return c.Address != "" }

// Validate checks the section. Each problem is a *confkey.Error whose key is
// relative to the admin section ("token_file"), several joined with
// errors.Join.
func (c Config) Validate() error {
	if c.Address == "" {
		var errs []error
		if c.TokenFile != "" {
			errs = append(errs, confkey.Errorf("token_file", "set but address is empty (the admin API is off)"))
		}
		if c.Pprof {
			errs = append(errs, confkey.Errorf("pprof", "on but address is empty (the admin API is off)"))
		}
		return errors.Join(errs...)
	}
	var errs []error
	ep, err := parseAddress(c.Address)
	if err != nil {
		errs = append(errs, confkey.New("address", err))
	} else if ep.network == "tcp" && c.TokenFile == "" {
		errs = append(errs, confkey.Errorf("token_file", "required on a TCP address (%s); use a unix socket (unix:/path) for token-free local access", c.Address))
	}
	if c.TokenFile != "" {
		if _, err := readToken(c.TokenFile); err != nil {
			errs = append(errs, confkey.New("token_file", err))
		}
	}
	return errors.Join(errs...)
}

// endpoint is a parsed address.
type endpoint struct {
	network string // "tcp" or "unix"
	address string // host:port, or the socket path
}

const unixPrefix = "unix:"

func (e endpoint) String() string {
	if e.network == "unix" {
		return unixPrefix + e.address
	}
	return e.address
}

// parseAddress parses an admin address: "unix:PATH", or "HOST:PORT" where
// HOST is an IP address, localhost, or empty (every interface).
func parseAddress(s string) (endpoint, error) {
	if path, ok := strings.CutPrefix(s, unixPrefix); ok {
		if path == "" || strings.ContainsRune(path, 0) {
			return endpoint{}, fmt.Errorf("%q: want unix:/path/to/socket", s)
		}
		return endpoint{network: "unix", address: path}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("%q: want host:port or unix:/path (%v)", s, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(p, 10) != port {
		return endpoint{}, fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	ep := endpoint{network: "tcp", address: s}
	if host != "" && !strings.EqualFold(host, "localhost") {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return endpoint{}, fmt.Errorf("%q: host must be an IP address or localhost", s)
		}
		ep.address = net.JoinHostPort(ip.String(), port)
	}
	return ep, nil
}

// maxTokenFile bounds what readToken reads.
const maxTokenFile = 4096

// ReadToken reads a token file as the server does (for clients).
func ReadToken(path string) (string, error) { return readToken(path) }

// readToken reads a bearer token: the file's content without surrounding
// white space; printable ASCII without spaces.
func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("%s: longer than %d bytes", path, maxTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	for _, c := range []byte(tok) {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("%s: the token must be printable ASCII without spaces", path)
		}
	}
	return tok, nil
}
