package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ftpsgate/ftpsgate/nat"
)

// replicaSlot is where one gateway of a fleet stands: passive.ports (All,
// what the balancer maps to the fleet) split evenly between Replicas, and
// this replica's slice (Ports, the ports it leases and advertises).
type replicaSlot struct {
	All      nat.PortRange
	Ports    nat.PortRange
	Replicas int
	Index    int
	FromHost bool // the index came from the host name (replica_index: hostname)
}

// hostname is os.Hostname; tests replace it.
var hostname = os.Hostname

// replicaIndexHostname is the passive.replica_index value that takes the
// index from the host name's "-N" suffix (a StatefulSet pod's ordinal).
const replicaIndexHostname = "hostname"

// replica parses passive.replicas and passive.replica_index and returns
// the slice of all (passive.ports; ok is false when it did not parse) this
// replica owns. One replica (the default) owns the whole range and needs
// no index; more need one: a number, or "hostname".
func replica(p *problems, all nat.PortRange, ok bool, replicas int, index string) replicaSlot {
	slot := replicaSlot{All: all, Ports: all, Replicas: replicas}
	index = strings.TrimSpace(index)
	if replicas < 1 {
		p.add("passive.replicas", fmt.Errorf("must be at least 1 (the number of gateways passive.ports is split between), not %d", replicas))
		return slot
	}
	switch {
	case strings.EqualFold(index, replicaIndexHostname):
		h, err := hostname()
		if err == nil {
			slot.Index, err = nat.Ordinal(h)
		}
		if err != nil {
			p.add("passive.replica_index", fmt.Errorf("hostname: %w", err))
			return slot
		}
		slot.FromHost = true
	case index == "" && replicas == 1:
	case index == "":
		p.add("passive.replica_index", fmt.Errorf("must be set with passive.replicas %d: this replica's number (0-%d) or %q (the host name's -N suffix, a StatefulSet ordinal)", replicas, replicas-1, replicaIndexHostname))
		return slot
	default:
		n, err := strconv.Atoi(index)
		if err != nil {
			p.add("passive.replica_index", fmt.Errorf("%q is neither a number nor %q", index, replicaIndexHostname))
			return slot
		}
		slot.Index = n
	}
	if slot.Index < 0 || slot.Index >= replicas {
		p.add("passive.replica_index", fmt.Errorf("%d is outside 0-%d (passive.replicas %d)", slot.Index, replicas-1, replicas))
		return slot
	}
	if !ok {
		return slot
	}
	s, err := all.Slice(replicas, slot.Index)
	if err != nil {
		p.add("passive.replicas", err)
		return slot
	}
	slot.Ports = s
	return slot
}
