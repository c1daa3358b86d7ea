package nat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Slice is replica index's share of r when r is split between replicas
// gateways (a fleet behind a balancer): equal, consecutive slices, replica
// 0 the lowest. r must split evenly, so that every port of r belongs to
// exactly one replica and the balancer's mapping is the range itself.
func (r PortRange) Slice(replicas, index int) (PortRange, error) {
	if err := r.Validate(); err != nil {
		return PortRange{}, err
	}
	if replicas < 1 {
		return PortRange{}, fmt.Errorf("replicas must be at least 1, not %d", replicas)
	}
	if index < 0 || index >= replicas {
		return PortRange{}, fmt.Errorf("replica index %d is outside 0-%d", index, replicas-1)
	}
	n := r.Size()
	if n%replicas != 0 {
		return PortRange{}, fmt.Errorf("the range %s (%d ports) does not split evenly between %d replicas (make its size a multiple of %d)", r, n, replicas, replicas)
	}
	per := n / replicas
	low := int(r.Low) + index*per
	return PortRange{Low: uint16(low), High: uint16(low + per - 1)}, nil
}

// Overlaps reports whether r and o share a port.
func (r PortRange) Overlaps(o PortRange) bool { return r.Low <= o.High && o.Low <= r.High }

// Covers reports whether every port of o lies in r.
func (r PortRange) Covers(o PortRange) bool { return r.Low <= o.Low && o.High <= r.High }

// ErrNoOrdinal is the error of Ordinal for a name without a "-N" suffix.
var ErrNoOrdinal = errors.New("no ordinal suffix")

// Ordinal is the number after the last "-" of a host name: a Kubernetes
// StatefulSet names its pods NAME-0, NAME-1, ... (the pod's hostname).
// A domain part (after the first ".") is ignored.
func Ordinal(hostname string) (int, error) {
	host, _, _ := strings.Cut(strings.TrimSpace(hostname), ".")
	i := strings.LastIndexByte(host, '-')
	if i < 0 || i == len(host)-1 {
		return 0, fmt.Errorf("host name %q: %w -N (a StatefulSet pod is NAME-N)", hostname, ErrNoOrdinal)
	}
	s := host[i+1:]
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("host name %q: %w -N (%q is not a number)", hostname, ErrNoOrdinal, s)
	}
	return n, nil
}
