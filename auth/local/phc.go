package local

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id's cost parameters and the sizes of salt and key.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams hash new passwords: RFC 9106 section 4's second
// recommended option for memory-constrained environments (m=64 MiB, t=3,
// p=4, 128-bit salt, 256-bit tag). It costs more than OWASP's minimum for
// Argon2id (m=19 MiB, t=2, p=1) and needs 64 MiB per running check, which
// the Store's concurrency limit bounds.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// Bounds on the parameters a stored hash may carry, so that a hostile or
// mistyped users file cannot make one check take the machine.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128
	maxPHCLen  = 512
)

// ErrHash is what ParseHash returns for a string that is not an Argon2id
// PHC string within bounds. Its messages never quote the string.
var ErrHash = errors.New("not an argon2id PHC string")

// Hash is a parsed Argon2id PHC string:
// $argon2id$v=19$m=65536,t=3,p=4$SALT$KEY (unpadded standard base64).
type Hash struct {
	Params Params
	Salt   []byte
	Key    []byte
}

var b64 = base64.RawStdEncoding

// Validate checks p against the bounds a stored hash may carry.
func (p Params) Validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: t=%d is outside 1..%d", ErrHash, p.Time, maxTime)
	case p.Threads < 1:
		return fmt.Errorf("%w: p=0", ErrHash)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("%w: m=%d is outside %d..%d KiB", ErrHash, p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("%w: a %d-byte salt is outside %d..%d", ErrHash, p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("%w: a %d-byte key is outside %d..%d", ErrHash, p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// HashPassword hashes password with a fresh random salt and p, and returns
// the PHC string.
func HashPassword(password string, p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	h := Hash{Params: p, Salt: salt, Key: argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)}
	return h.String(), nil
}

// String formats h as a PHC string.
func (h Hash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.Params.Memory, h.Params.Time, h.Params.Threads, b64.EncodeToString(h.Salt), b64.EncodeToString(h.Key))
}

// Match says whether password hashes to h's key with h's own parameters;
// the comparison takes constant time.
func (h Hash) Match(password string) bool {
	k := argon2.IDKey([]byte(password), h.Salt, h.Params.Time, h.Params.Memory, h.Params.Threads, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(k, h.Key) == 1
}

// ParseHash parses an Argon2id PHC string with version 19 and the
// parameters in the order m, t, p, as HashPassword and the reference
// implementation write them. Errors never quote s.
func ParseHash(s string) (Hash, error) {
	if len(s) > maxPHCLen {
		return Hash{}, fmt.Errorf("%w: longer than %d bytes", ErrHash, maxPHCLen)
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return Hash{}, fmt.Errorf("%w: want $argon2id$v=19$m=M,t=T,p=P$SALT$KEY", ErrHash)
	}
	if f[1] != "argon2id" {
		return Hash{}, fmt.Errorf("%w: the algorithm is not argon2id", ErrHash)
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return Hash{}, fmt.Errorf("%w: the version is not v=%d", ErrHash, argon2.Version)
	}
	var h Hash
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return Hash{}, fmt.Errorf("%w: want the parameters m=M,t=T,p=P", ErrHash)
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(ps[i], name+"=")
		if !ok {
			return Hash{}, fmt.Errorf("%w: want the parameters m=M,t=T,p=P", ErrHash)
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		// Decimal digits only: no sign, no leading zero (PHC).
		if v == "" || (len(v) > 1 && v[0] == '0') || strings.TrimLeft(v, "0123456789") != "" {
			return Hash{}, fmt.Errorf("%w: parameter %s is not a decimal number", ErrHash, name)
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return Hash{}, fmt.Errorf("%w: parameter %s is out of range", ErrHash, name)
		}
		switch name {
		case "m":
			h.Params.Memory = uint32(n)
		case "t":
			h.Params.Time = uint32(n)
		case "p":
			h.Params.Threads = uint8(n)
		}
	}
	// The decoder skips CR and LF; a stored hash has neither.
	if strings.ContainsAny(f[4]+f[5], "\r\n") {
		return Hash{}, fmt.Errorf("%w: a line break in salt or key", ErrHash)
	}
	var err error
	if h.Salt, err = b64.Strict().DecodeString(f[4]); err != nil {
		return Hash{}, fmt.Errorf("%w: the salt is not unpadded base64", ErrHash)
	}
	if h.Key, err = b64.Strict().DecodeString(f[5]); err != nil {
		return Hash{}, fmt.Errorf("%w: the key is not unpadded base64", ErrHash)
	}
	h.Params.SaltLen, h.Params.KeyLen = uint32(len(h.Salt)), uint32(len(h.Key))
	if err := h.Params.Validate(); err != nil {
		return Hash{}, err
	}
	return h, nil
}
