package main

import (
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// byFamily splits prefixes into IPv4 and IPv6 ones.
func byFamily(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// allPorts is every port the gateway takes clients on, nftables style
// ("21, 990, 50000-50019").
func (s fwSpec) allPorts(sep, rangeSep string) string {
	parts := []string{s.controlList(sep)}
	for _, p := range s.Passive {
		parts = append(parts, fmt.Sprintf("%d%s%d", p.Ports.Low, rangeSep, p.Ports.High))
	}
	return strings.Join(parts, sep)
}

func passiveWhat(p fwSlice) string {
	if p.Replicas > 1 {
		return fmt.Sprintf("ftpsgate passive data ports of replica %d", p.Index)
	}
	return "ftpsgate passive data ports"
}

// writeNftables prints an nft -f script: its own table (replaced on every
// load), an input chain that drops the admin port but for loopback and the
// admin networks, and the gateway's ports but for the trusted balancers.
func writeNftables(w io.Writer, s fwSpec) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("#!/usr/sbin/nft -f")
	s.header(w, "#")
	p("# Load: nft -f FILE (replaces table inet ftpsgate). Its accept rules end")
	p("# this table's chain only: where the host's own input chain drops by")
	p("# default, add the same accept rules there.")
	p("table inet ftpsgate")
	p("delete table inet ftpsgate")
	p("table inet ftpsgate {")
	p("\tchain input {")
	p("\t\ttype filter hook input priority filter; policy accept;")
	if s.AdminPort != 0 {
		p("\t\tiif \"lo\" tcp dport %d accept comment \"ftpsgate admin API from loopback\"", s.AdminPort)
		v4, v6 := byFamily(s.AdminFrom)
		if len(v4) > 0 {
			p("\t\tip saddr { %s } tcp dport %d accept comment \"ftpsgate admin API from the admin network\"", prefixList(v4, ", "), s.AdminPort)
		}
		if len(v6) > 0 {
			p("\t\tip6 saddr { %s } tcp dport %d accept comment \"ftpsgate admin API from the admin network\"", prefixList(v6, ", "), s.AdminPort)
		}
		p("\t\ttcp dport %d counter drop comment \"ftpsgate admin API: closed to the outside\"", s.AdminPort)
	}
	if len(s.Agents) > 0 {
		ports := portList(s.Agents, ", ")
		a4, a6 := byFamily(s.AgentsFrom)
		if len(a4) > 0 {
			p("\t\tip saddr { %s } tcp dport { %s } accept comment \"ftpsgate agent listener: the agents dial in\"", prefixList(a4, ", "), ports)
		}
		if len(a6) > 0 {
			p("\t\tip6 saddr { %s } tcp dport { %s } accept comment \"ftpsgate agent listener: the agents dial in\"", prefixList(a6, ", "), ports)
		}
		if len(s.AgentsFrom) > 0 {
			p("\t\ttcp dport { %s } counter drop comment \"ftpsgate agent listener: only from the agents' networks\"", ports)
		} else {
			p("\t\ttcp dport { %s } accept comment \"ftpsgate agent listener: the agents dial in\"", ports)
		}
	}
	v4, v6 := byFamily(s.From)
	src := func(rest string) {
		if len(s.From) == 0 {
			p("\t\t%s", rest)
			return
		}
		if len(v4) > 0 {
			p("\t\tip saddr { %s } %s", prefixList(v4, ", "), rest)
		}
		if len(v6) > 0 {
			p("\t\tip6 saddr { %s } %s", prefixList(v6, ", "), rest)
		}
	}
	src(fmt.Sprintf("tcp dport { %s } accept comment \"ftpsgate control listeners\"", s.controlList(", ")))
	for _, ps := range s.Passive {
		src(fmt.Sprintf("tcp dport %d-%d accept comment %q", ps.Ports.Low, ps.Ports.High, passiveWhat(ps)))
	}
	if len(s.From) > 0 {
		p("\t\ttcp dport { %s } counter drop comment \"ftpsgate ports: only through the balancer\"", s.allPorts(", ", "-"))
	}
	p("\t}")
	p("}")
}

// writeIptables prints an iptables-restore --noflush file (IPv4) with a
// chain of its own; the INPUT jump is added once by hand.
func writeIptables(w io.Writer, s fwSpec) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	s.header(w, "#")
	p("# Load: iptables-restore --noflush < FILE (replaces chain ftpsgate-input),")
	p("# then once: iptables -I INPUT -p tcp -j ftpsgate-input")
	p("# IPv4 only; for IPv6 use the same rules with ip6tables-restore.")
	p("*filter")
	p(":ftpsgate-input - [0:0]")
	c := func(text string) string { return fmt.Sprintf("-m comment --comment %q", text) }
	if s.AdminPort != 0 {
		p("-A ftpsgate-input -i lo -p tcp --dport %d %s -j ACCEPT", s.AdminPort, c("ftpsgate admin API from loopback"))
		v4, _ := byFamily(s.AdminFrom)
		for _, pre := range v4 {
			p("-A ftpsgate-input -s %s -p tcp --dport %d %s -j ACCEPT", pre, s.AdminPort, c("ftpsgate admin API from the admin network"))
		}
		p("-A ftpsgate-input -p tcp --dport %d %s -j DROP", s.AdminPort, c("ftpsgate admin API: closed to the outside"))
	}
	if len(s.Agents) > 0 {
		ports := portList(s.Agents, ",")
		a4, _ := byFamily(s.AgentsFrom)
		for _, pre := range a4 {
			p("-A ftpsgate-input -s %s -p tcp -m multiport --dports %s %s -j ACCEPT", pre, ports, c("ftpsgate agent listener: the agents dial in"))
		}
		if len(s.AgentsFrom) > 0 {
			p("-A ftpsgate-input -p tcp -m multiport --dports %s %s -j DROP", ports, c("ftpsgate agent listener: only from the agents' networks"))
		} else {
			p("-A ftpsgate-input -p tcp -m multiport --dports %s %s -j ACCEPT", ports, c("ftpsgate agent listener: the agents dial in"))
		}
	}
	v4, _ := byFamily(s.From)
	srcs := []string{""}
	if len(s.From) > 0 {
		srcs = nil
		for _, pre := range v4 {
			srcs = append(srcs, "-s "+pre.String()+" ")
		}
	}
	for _, src := range srcs {
		p("-A ftpsgate-input %s-p tcp -m multiport --dports %s %s -j ACCEPT", src, s.controlList(","), c("ftpsgate control listeners"))
		for _, ps := range s.Passive {
			p("-A ftpsgate-input %s-p tcp --dport %d:%d %s -j ACCEPT", src, ps.Ports.Low, ps.Ports.High, c(passiveWhat(ps)))
		}
	}
	if len(s.From) > 0 {
		p("-A ftpsgate-input -p tcp -m multiport --dports %s %s -j DROP", s.allPorts(",", ":"), c("ftpsgate ports: only through the balancer"))
	}
	p("-A ftpsgate-input -j RETURN")
	p("COMMIT")
}

// xmlComment makes s safe inside <!-- -->.
func xmlComment(s string) string { return strings.ReplaceAll(s, "--", "- -") }

// writeFirewalld prints a firewalld zone: the gateway's ports (from the
// trusted balancers only, as rich rules, when there are some) and the
// admin port for the admin networks; everything else is rejected by the
// zone's default target.
func writeFirewalld(w io.Writer, s fwSpec) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(`<?xml version="1.0" encoding="utf-8"?>`)
	var h strings.Builder
	s.header(&h, "")
	p("<!--")
	p("%s", xmlComment(strings.TrimRight(h.String(), "\n")))
	p(" Install as /etc/firewalld/zones/ftpsgate.xml, reload firewalld and bind the")
	p(" public interface to the zone ftpsgate (loopback is trusted by firewalld).")
	p("-->")
	p(`<zone target="default">`)
	p("  <short>ftpsgate</short>")
	p("  <description>FTPS gateway: control listeners %s, passive ports %s.</description>", s.controlList(", "), s.allPorts(", ", "-")[len(s.controlList(", "))+2:])
	port := func(ports string) string { return fmt.Sprintf(`<port protocol="tcp" port="%s"/>`, ports) }
	rule := func(pre netip.Prefix, ports string) {
		fam := "ipv4"
		if pre.Addr().Is6() {
			fam = "ipv6"
		}
		p(`  <rule family="%s"><source address="%s"/>%s<accept/></rule>`, fam, pre, port(ports))
	}
	var open []string
	for _, c := range s.Control {
		open = append(open, strconv.Itoa(int(c)))
	}
	for _, ps := range s.Passive {
		open = append(open, fmt.Sprintf("%d-%d", ps.Ports.Low, ps.Ports.High))
	}
	for _, ports := range open {
		if len(s.From) == 0 {
			p("  %s", port(ports))
			continue
		}
		for _, pre := range s.From {
			rule(pre, ports)
		}
	}
	for _, ap := range s.Agents {
		p("  <!-- agent listener %d (agents.listen): the agents dial in -->", ap)
		if len(s.AgentsFrom) == 0 {
			p("  %s", port(strconv.Itoa(int(ap))))
		}
		for _, pre := range s.AgentsFrom {
			rule(pre, strconv.Itoa(int(ap)))
		}
	}
	if s.AdminPort != 0 {
		p("  <!-- admin API %d: only these networks -->", s.AdminPort)
		for _, pre := range s.AdminFrom {
			rule(pre, strconv.Itoa(int(s.AdminPort)))
		}
	}
	p("</zone>")
}

// k8sOptions name the Services of the k8s-service format.
type k8sOptions struct {
	Name, App, Type string
	Control         bool // the fleet's control Service too
}

var k8sPortName = regexp.MustCompile(`[^a-z0-9-]`)

// writeK8sServices prints the Services that expose the gateway: one for
// the control ports (and, for a single gateway, its passive ports), and
// for a fleet one per replica listing that replica's passive ports,
// selecting its pod by name (a StatefulSet's NAME-N). A Service takes no
// port ranges: every passive port is listed. The admin port is left out.
func writeK8sServices(w io.Writer, s fwSpec, o k8sOptions) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	s.header(w, "#")
	p("# Every Service must get the address passive.public_host names (e.g.")
	p("# MetalLB: the same spec.loadBalancerIP and the allow-shared-ip annotation).")
	fleet := len(s.Passive) > 1 || (len(s.Passive) == 1 && s.Passive[0].Replicas > 1)
	service := func(name string, selector map[string]string, ports [][2]string) {
		p("---")
		p("apiVersion: v1")
		p("kind: Service")
		p("metadata:")
		p("  name: %s", name)
		p("  labels:")
		p("    app.kubernetes.io/name: %s", o.App)
		p("  annotations:")
		p("    metallb.universe.tf/allow-shared-ip: %s", o.Name)
		p("spec:")
		p("  type: %s", o.Type)
		if o.Type == "LoadBalancer" || o.Type == "NodePort" {
			p("  externalTrafficPolicy: Local # keeps the client's address (bans, limits, data-connection checks)")
		}
		p("  selector:")
		for k, v := range selector {
			p("    %s: %s", k, v)
		}
		p("  ports:")
		for _, pt := range ports {
			p("    - {name: %s, protocol: TCP, port: %s, targetPort: %s}", pt[0], pt[1], pt[1])
		}
	}
	var control [][2]string
	for _, c := range s.Control {
		control = append(control, [2]string{fmt.Sprintf("ftp-%d", c), strconv.Itoa(int(c))})
	}
	passive := func(ps fwSlice) [][2]string {
		var out [][2]string
		for port := int(ps.Ports.Low); port <= int(ps.Ports.High); port++ {
			out = append(out, [2]string{fmt.Sprintf("pasv-%d", port), strconv.Itoa(port)})
		}
		return out
	}
	// The agents dial each replica's own listener: in a fleet, through the
	// replica's Service (they list every replica's address).
	agents := func(ps fwSlice) [][2]string {
		if ps.Agents == 0 {
			return nil
		}
		return [][2]string{{"agents", strconv.Itoa(int(ps.Agents))}}
	}
	app := map[string]string{"app.kubernetes.io/name": o.App}
	if !fleet {
		service(o.Name, app, append(append(control, agents(s.Passive[0])...), passive(s.Passive[0])...))
		return nil
	}
	if o.Control {
		service(o.Name, app, control)
	}
	for _, ps := range s.Passive {
		pod := fmt.Sprintf("%s-%d", o.Name, ps.Index)
		service(k8sPortName.ReplaceAllString(pod+"-passive", "-"), map[string]string{"statefulset.kubernetes.io/pod-name": pod}, append(agents(ps), passive(ps)...))
	}
	return nil
}
