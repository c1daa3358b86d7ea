package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/ftpsgate/ftpsgate/nat"
)

// fleetMember is one replica of a fleet: the file it was read from and
// its checked configuration. A file with passive.replica_index: hostname
// stands for every replica of passive.replicas (a StatefulSet's shared
// ConfigMap), one member each.
type fleetMember struct {
	File string
	Cfg  *loaded
}

func (m fleetMember) String() string {
	return fmt.Sprintf("%s (replica %d of %d, passive %s)", m.File, m.Cfg.fleet.Index, m.Cfg.fleet.Replicas, m.Cfg.fleet.Ports)
}

// loadFleet reads the replicas' configuration files.
func loadFleet(files []string) ([]fleetMember, error) {
	if len(files) == 0 {
		return nil, errors.New("no configuration files: name one per replica (or one with passive.replica_index: hostname)")
	}
	var out []fleetMember
	var errs []error
	for _, f := range files {
		v := newViper()
		v.SetConfigFile(f)
		if err := v.ReadInConfig(); err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", f, err))
			continue
		}
		var overrides []map[string]any
		if strings.EqualFold(strings.TrimSpace(v.GetString("passive.replica_index")), replicaIndexHostname) {
			for i := 0; i < max(v.GetInt("passive.replicas"), 1); i++ {
				overrides = append(overrides, map[string]any{"passive.replica_index": strconv.Itoa(i)})
			}
		} else {
			overrides = append(overrides, nil)
		}
		for _, o := range overrides {
			cfg, err := loadFileWith(f, o)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f, err))
				break
			}
			out = append(out, fleetMember{File: f, Cfg: cfg})
		}
	}
	return out, errors.Join(errs...)
}

// checkFleet reports what makes ms unfit to run behind one balancer that
// maps balancer (zero: the replicas' own passive.ports) to them: passive
// slices that overlap (a data connection would reach a replica that did
// not lease its port) or lie outside the mapped range, replicas missing
// from a split, different passive.public_host values (a 227 reply must
// name the balancer) and listeners that differ or take no PROXY header.
func checkFleet(ms []fleetMember, balancer nat.PortRange) []string {
	var out []string
	for i, a := range ms {
		for _, b := range ms[i+1:] {
			if a.Cfg.fleet.Ports.Overlaps(b.Cfg.fleet.Ports) {
				out = append(out, fmt.Sprintf("passive ports overlap: %s and %s: a data connection could reach the replica that did not lease its port", a, b))
			}
		}
		mapped := balancer
		if mapped == (nat.PortRange{}) {
			mapped = a.Cfg.fleet.All
		}
		if !mapped.Covers(a.Cfg.fleet.Ports) {
			out = append(out, fmt.Sprintf("%s: its passive ports lie outside what the balancer maps (%s)", a, mapped))
		}
	}
	out = append(out, checkSplits(ms)...)
	out = append(out, checkSameFront(ms)...)
	return out
}

// checkSplits reports, for every split range (passive.replicas above 1),
// the replica indexes no file covers: their ports lead nowhere.
func checkSplits(ms []fleetMember) []string {
	type split struct {
		all nat.PortRange
		n   int
	}
	seen := map[split]map[int]bool{}
	for _, m := range ms {
		s := split{m.Cfg.fleet.All, m.Cfg.fleet.Replicas}
		if s.n < 2 {
			continue
		}
		if seen[s] == nil {
			seen[s] = map[int]bool{}
		}
		seen[s][m.Cfg.fleet.Index] = true
	}
	var out []string
	for s, idx := range seen {
		for i := 0; i < s.n; i++ {
			if !idx[i] {
				sl, _ := s.all.Slice(s.n, i)
				out = append(out, fmt.Sprintf("passive.ports %s split between %d replicas: no file is replica %d (ports %s would lead nowhere)", s.all, s.n, i, sl))
			}
		}
	}
	sort.Strings(out)
	return out
}

// checkSameFront reports differences in what the balancer needs to be the
// same on every replica: passive.public_host, and the listeners (names,
// ports, TLS modes).
func checkSameFront(ms []fleetMember) []string {
	var out []string
	first := ms[0]
	if !first.Cfg.proxy.Passive.PublicHost.IsValid() && first.Cfg.proxy.Passive.PublicName == nil {
		out = append(out, fmt.Sprintf("%s: passive.public_host is not set: behind a balancer, 227 replies must name the balancer's public address", first.File))
	}
	for _, m := range ms {
		if m.File == first.File && m.Cfg.fleet.Index == first.Cfg.fleet.Index {
			continue
		}
		if publicHostOf(m.Cfg) != publicHostOf(first.Cfg) {
			out = append(out, fmt.Sprintf("%s: passive.public_host %q differs from %s's %q: every replica advertises the balancer", m.File, publicHostOf(m.Cfg), first.File, publicHostOf(first.Cfg)))
		}
		if frontOf(m.Cfg) != frontOf(first.Cfg) {
			out = append(out, fmt.Sprintf("%s: listeners (%s) differ from %s's (%s): the balancer forwards each port to every replica", m.File, frontOf(m.Cfg), first.File, frontOf(first.Cfg)))
		}
	}
	return out
}

func publicHostOf(c *loaded) string {
	if n := c.proxy.Passive.PublicName; n != nil {
		return n.Name
	}
	if c.proxy.Passive.PublicHost.IsValid() {
		return c.proxy.Passive.PublicHost.String()
	}
	return ""
}

// frontOf is a replica's listeners as the balancer sees them: name, port
// and TLS mode each.
func frontOf(c *loaded) string {
	var parts []string
	for _, l := range c.proxy.Listeners {
		_, port, _ := net.SplitHostPort(l.Address)
		parts = append(parts, fmt.Sprintf("%s:%s/%s", l.Name, port, l.TLS))
	}
	return strings.Join(parts, " ")
}

// validateFleet is `ftpsgate validate --fleet FILE...`: every file must be
// valid on its own, and the fleet fit for one balancer (checkFleet).
func validateFleet(files []string, balancer string, stdout, stderr io.Writer) int {
	var mapped nat.PortRange
	if balancer != "" {
		var err error
		if mapped, err = nat.ParsePortRange(balancer); err != nil {
			fmt.Fprintf(stderr, "ftpsgate validate: --balancer-ports: %v\n", err)
			return 2
		}
	}
	ms, err := loadFleet(files)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if problems := checkFleet(ms, mapped); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "fleet: "+p)
		}
		return 1
	}
	fmt.Fprintf(stdout, "fleet ok: %d replicas\n", len(ms))
	for _, m := range ms {
		fmt.Fprintln(stdout, "  "+m.String())
	}
	for _, n := range fleetNotes(ms) {
		fmt.Fprintln(stdout, "note: "+n)
	}
	nofile, _ := descriptorLimit()
	warned := map[string]bool{}
	for _, m := range ms {
		if warned[m.File] {
			continue
		}
		warned[m.File] = true
		_, ws := warnings(m.Cfg, nofile)
		for _, w := range ws {
			fmt.Fprintf(stdout, "warning: %s: %s\n", m.File, w.String())
		}
	}
	return 0
}

// fleetNotes are what may be right but often is not: a listener without
// PROXY protocol behind a balancer sees every client as the balancer (a
// Kubernetes Service with externalTrafficPolicy: Local needs none).
func fleetNotes(ms []fleetMember) []string {
	var out []string
	for _, l := range ms[0].Cfg.proxy.Listeners {
		if !l.ProxyProtocol.Enabled {
			out = append(out, fmt.Sprintf("%s: listener %s takes no PROXY header: behind a balancer that does not keep the client's address, every client looks like the balancer (bans, limits, data-connection checks)", ms[0].File, l.Name))
		}
	}
	return out
}
