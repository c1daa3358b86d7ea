package nat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PortRange is an inclusive range of TCP ports. The zero value is invalid.
type PortRange struct {
	Low, High uint16
}

// ParsePortRange parses "50000-50019" or a single port "50000".
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return PortRange{}, errors.New("empty port range, want LOW-HIGH such as 50000-50019")
	}
	lowStr, highStr, found := strings.Cut(s, "-")
	if !found {
		highStr = lowStr
	}
	low, err := parsePort(lowStr)
	if err != nil {
		return PortRange{}, err
	}
	high, err := parsePort(highStr)
	if err != nil {
		return PortRange{}, err
	}
	r := PortRange{Low: low, High: high}
	return r, r.Validate()
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}

// Validate reports whether the range is usable.
func (r PortRange) Validate() error {
	if r.Low == 0 || r.High == 0 {
		return errors.New("port 0 is not allowed")
	}
	if r.Low > r.High {
		return fmt.Errorf("low port %d is above high port %d", r.Low, r.High)
	}
	return nil
}

// Size is the number of ports in the range.
func (r PortRange) Size() int {
	if r.Low == 0 || r.Low > r.High {
		return 0
	}
	return int(r.High-r.Low) + 1
}

// Contains reports whether port p lies in the range.
func (r PortRange) Contains(p uint16) bool { return p >= r.Low && p <= r.High }

func (r PortRange) String() string {
	if r.Low == r.High {
		return strconv.Itoa(int(r.Low))
	}
	return fmt.Sprintf("%d-%d", r.Low, r.High)
}

// MarshalText makes a PortRange print as "LOW-HIGH" in logs and JSON.
func (r PortRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses "LOW-HIGH".
func (r *PortRange) UnmarshalText(b []byte) error {
	v, err := ParsePortRange(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
