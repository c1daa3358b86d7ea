package main

import (
	"encoding/base64"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// firewallConfig listens on every address (explicit 21, implicit 990) with
// the admin API on a public port.
func firewallConfig(t *testing.T, proxied bool) string {
	t.Helper()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pp := ""
	if proxied {
		pp = "\n    proxy_protocol: {enabled: true, trusted: [10.0.0.2, \"fd00::2\"]}"
	}
	return writeConfig(t, `
listeners:
  - name: explicit
    address: 0.0.0.0:21
    tls: explicit`+pp+`
  - name: implicit
    address: 0.0.0.0:990
    tls: implicit`+pp+`
backend: {address: 10.0.9.9:21}
passive: {public_host: 203.0.113.10, ports: 50000-50299, replicas: 3, replica_index: "1"}
admin: {address: 0.0.0.0:9090, token_file: `+token+`}
`)
}

func firewall(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"firewall"}, args...)...)
	if code != 0 {
		t.Fatalf("ftpsgate firewall %v: %d %s", args, code, errOut)
	}
	return out
}

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

func TestFirewallNftables(t *testing.T) {
	direct := firewall(t, "--config", firewallConfig(t, false), "--format", "nftables", "--admin-from", "192.0.2.0/24,2001:db8::/64")
	mustContain(t, "nftables", direct,
		"table inet ftpsgate {", "type filter hook input priority filter; policy accept;",
		`iif "lo" tcp dport 9090 accept`, "ip saddr { 192.0.2.0/24 } tcp dport 9090 accept", "ip6 saddr { 2001:db8::/64 } tcp dport 9090 accept",
		"tcp dport 9090 counter drop", "tcp dport { 21, 990 } accept", "tcp dport 50100-50199 accept")
	if strings.Contains(direct, "50099") || strings.Contains(direct, "50200") {
		t.Error("nftables opens ports outside the replica's slice")
	}
	// The admin rules come before anything that could accept its port.
	if strings.Index(direct, "counter drop") > strings.Index(direct, "tcp dport { 21, 990 }") {
		t.Error("admin drop after the accepts")
	}
	proxied := firewall(t, "--config", firewallConfig(t, true), "--format", "nftables")
	mustContain(t, "nftables behind a balancer", proxied,
		"ip saddr { 10.0.0.2/32 } tcp dport { 21, 990 } accept", "ip6 saddr { fd00::2/128 } tcp dport 50100-50199 accept",
		`tcp dport { 21, 990, 50100-50199 } counter drop comment "ftpsgate ports: only through the balancer"`)
	nft, err := exec.LookPath("nft")
	if err != nil {
		if nft, err = exec.LookPath("/usr/sbin/nft"); err != nil {
			t.Skip("nft not installed (apt-get install nftables): syntax not checked")
		}
	}
	for name, rules := range map[string]string{"direct": direct, "proxied": proxied} {
		path := filepath.Join(t.TempDir(), name+".nft")
		if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(nft, "-c", "-f", path).CombinedOutput()
		if err != nil && (strings.Contains(string(out), "Operation not permitted") || strings.Contains(string(out), "Could not process rule: Protocol not supported")) {
			t.Skipf("nft -c needs CAP_NET_ADMIN and nf_tables in the kernel: %s", out)
		}
		if err != nil {
			t.Errorf("nft -c -f (%s): %v\n%s\n%s", name, err, out, rules)
		}
	}
}

func TestFirewallIptables(t *testing.T) {
	out := firewall(t, "--config", firewallConfig(t, true), "--format", "iptables", "--admin-from", "192.0.2.0/24")
	mustContain(t, "iptables", out, "*filter\n:ftpsgate-input - [0:0]\n",
		"-A ftpsgate-input -i lo -p tcp --dport 9090 ", "-A ftpsgate-input -s 192.0.2.0/24 -p tcp --dport 9090 ",
		"-A ftpsgate-input -p tcp --dport 9090 -m comment --comment \"ftpsgate admin API: closed to the outside\" -j DROP",
		"-A ftpsgate-input -s 10.0.0.2/32 -p tcp -m multiport --dports 21,990 ", "-A ftpsgate-input -s 10.0.0.2/32 -p tcp --dport 50100:50199 ",
		"-A ftpsgate-input -p tcp -m multiport --dports 21,990,50100:50199 ", "\nCOMMIT\n")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "-A") && strings.Contains(line, "fd00") {
			t.Errorf("an IPv6 source in an iptables rule: %s", line)
		}
	}
	bin, err := exec.LookPath("iptables-restore")
	if err != nil {
		t.Skip("iptables-restore not installed: syntax not checked")
	}
	cmd := exec.Command(bin, "--test", "--noflush")
	cmd.Stdin = strings.NewReader(out)
	if b, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "Permission denied") || strings.Contains(string(b), "can't initialize") {
			t.Skipf("iptables-restore --test cannot run here: %s", b)
		}
		t.Errorf("iptables-restore --test: %v\n%s", err, b)
	}
}

func TestFirewallFirewalld(t *testing.T) {
	out := firewall(t, "--config", firewallConfig(t, true), "--format", "firewalld", "--admin-from", "192.0.2.0/24")
	var zone struct {
		XMLName xml.Name `xml:"zone"`
		Short   string   `xml:"short"`
		Ports   []struct {
			Port string `xml:"port,attr"`
		} `xml:"port"`
		Rules []struct {
			Family string `xml:"family,attr"`
			Source struct {
				Address string `xml:"address,attr"`
			} `xml:"source"`
			Port struct {
				Port     string `xml:"port,attr"`
				Protocol string `xml:"protocol,attr"`
			} `xml:"port"`
			Accept *struct{} `xml:"accept"`
		} `xml:"rule"`
	}
	if err := xml.Unmarshal([]byte(out), &zone); err != nil {
		t.Fatalf("firewalld zone does not parse: %v\n%s", err, out)
	}
	got := map[string]bool{}
	for _, r := range zone.Rules {
		if r.Accept == nil || r.Port.Protocol != "tcp" {
			t.Errorf("rule %+v", r)
		}
		got[r.Family+" "+r.Source.Address+" "+r.Port.Port] = true
	}
	want := []string{"ipv4 10.0.0.2/32 21", "ipv4 10.0.0.2/32 990", "ipv4 10.0.0.2/32 50100-50199", "ipv6 fd00::2/128 50100-50199", "ipv4 192.0.2.0/24 9090"}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no rule %s: %v", w, got)
		}
	}
	if len(got) != len(want)+2 || len(zone.Ports) != 0 { // + fd00::2 for 21 and 990
		t.Errorf("rules %v, plain ports %v: want exactly the balancer's and the admin network's", got, zone.Ports)
	}
	direct := firewall(t, "--config", firewallConfig(t, false), "--format", "firewalld")
	if err := xml.Unmarshal([]byte(direct), &zone); err != nil || len(zone.Ports) != 3 || zone.Ports[2].Port != "50100-50199" {
		t.Errorf("direct zone: %v %+v", err, zone.Ports)
	}
}

// k8sService is the part of a Service the tests read.
type k8sService struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort int    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

func parseServices(t *testing.T, s string) []k8sService {
	t.Helper()
	var out []k8sService
	dec := yaml.NewDecoder(strings.NewReader(s))
	for {
		var svc k8sService
		if err := dec.Decode(&svc); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("k8s-service output does not parse: %v\n%s", err, s)
		}
		if svc.Kind != "" {
			out = append(out, svc)
		}
	}
}

func TestFirewallK8sService(t *testing.T) {
	// One gateway: one Service with its control and every passive port.
	single := strings.Replace(mustRead(t, firewallConfig(t, false)), `replicas: 3, replica_index: "1"`, "replicas: 1", 1)
	one := parseServices(t, firewall(t, "--config", writeConfig(t, single), "--format", "k8s-service", "--name", "gw"))
	if len(one) != 1 || len(one[0].Spec.Ports) != 2+300 {
		t.Fatalf("single gateway: %d services", len(one))
	}
	for i, p := range one[0].Spec.Ports[2:] {
		if p.Port != 50000+i || p.TargetPort != p.Port || p.Port == 9090 {
			t.Errorf("port %+v", p)
		}
	}
	// A fleet from a shared file: control Service + one per replica.
	shared := strings.Replace(mustRead(t, firewallConfig(t, false)), `replica_index: "1"`, "replica_index: hostname", 1)
	svcs := parseServices(t, firewall(t, "--fleet", "--format", "k8s-service", "--name", "gw", writeConfig(t, shared)))
	if len(svcs) != 4 || len(svcs[0].Spec.Ports) != 2 || svcs[0].Spec.Selector["app.kubernetes.io/name"] != "ftpsgate" {
		t.Fatalf("fleet services: %+v", svcs)
	}
	passiveOnly := parseServices(t, firewall(t, "--fleet", "--format", "k8s-service", "--name", "gw", "--control-service=false", writeConfig(t, shared)))
	if len(passiveOnly) != 3 || passiveOnly[0].Metadata.Name != "gw-0-passive" {
		t.Errorf("--control-service=false: %d services", len(passiveOnly))
	}
	for i, s := range svcs[1:] {
		if pod := s.Spec.Selector["statefulset.kubernetes.io/pod-name"]; pod != "gw-"+string(rune('0'+i)) || len(s.Spec.Ports) != 100 || s.Spec.Ports[0].Port != 50000+100*i {
			t.Errorf("replica %d service %s: pod %q, %d ports from %d", i, s.Metadata.Name, pod, len(s.Spec.Ports), s.Spec.Ports[0].Port)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFirewallUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--config", "x.yaml", "--fleet"}, {"--config", firewallConfig(t, false), "--format", "pf"}, {"--config", "a", "b"}} {
		if code, _, _ := runCLI(append([]string{"firewall"}, args...)...); code != 2 {
			t.Errorf("firewall %v: exit %d, want 2", args, code)
		}
	}
}

// TestFirewallAgents: the agent listener (agents.listen) is opened in
// every format: the LAN's agents dial in there (not through the
// balancer), from --agents-from only when it is given. The rules used to
// leave it out: a firewalld zone rejected the agents, and the Services
// had no port for them.
func TestFirewallAgents(t *testing.T) {
	pin := "sha256/" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	single := writeConfig(t, `
listeners: [{name: explicit, address: "0.0.0.0:21", tls: explicit, proxy_protocol: {enabled: true, trusted: [10.0.0.2]}}]
backend: {address: "10.0.9.9:21", via: lan}
passive: {public_host: 203.0.113.10, ports: 50000-50009}
agents:
  listen: "0.0.0.0:6990"
  groups:
    lan: {pins: [`+pin+`]}
`)
	code, nft, errOut := runCLI("firewall", "--config", single, "--format", "nftables")
	if code != 0 || !strings.Contains(errOut, "opened to any source: give --agents-from") {
		t.Errorf("without --agents-from: exit %d, no warning on stderr: %q", code, errOut)
	}
	mustContain(t, "nftables", nft, `tcp dport { 6990 } accept comment "ftpsgate agent listener`, "Agent listener (agents.listen) 6990")
	if strings.Contains(nft, "6990 } counter drop") || strings.Contains(nft, "10.0.0.2/32 } tcp dport { 6990") {
		t.Errorf("nftables: the agent port is closed, or open only to the balancer:\n%s", nft)
	}
	nft = firewall(t, "--config", single, "--format", "nftables", "--agents-from", "10.1.0.0/24,fd00:1::/64")
	mustContain(t, "nftables --agents-from", nft, "ip saddr { 10.1.0.0/24 } tcp dport { 6990 } accept", "ip6 saddr { fd00:1::/64 } tcp dport { 6990 } accept",
		`tcp dport { 6990 } counter drop comment "ftpsgate agent listener: only from the agents' networks"`)
	ipt := firewall(t, "--config", single, "--format", "iptables", "--agents-from", "10.1.0.0/24")
	mustContain(t, "iptables", ipt, "-A ftpsgate-input -s 10.1.0.0/24 -p tcp -m multiport --dports 6990 ", "-A ftpsgate-input -p tcp -m multiport --dports 6990 -m comment --comment \"ftpsgate agent listener: only from the agents' networks\" -j DROP")
	fwd := firewall(t, "--config", single, "--format", "firewalld")
	mustContain(t, "firewalld", fwd, `<port protocol="tcp" port="6990"/>`)
	fwd = firewall(t, "--config", single, "--format", "firewalld", "--agents-from", "10.1.0.0/24")
	mustContain(t, "firewalld --agents-from", fwd, `<rule family="ipv4"><source address="10.1.0.0/24"/><port protocol="tcp" port="6990"/><accept/></rule>`)
	if strings.Contains(fwd, "\n  <port protocol=\"tcp\" port=\"6990\"/>") {
		t.Errorf("firewalld --agents-from opens the agent port to everyone:\n%s", fwd)
	}
	svc := parseServices(t, firewall(t, "--config", single, "--format", "k8s-service"))
	found := false
	for _, s := range svc {
		for _, p := range s.Spec.Ports {
			found = found || (p.Name == "agents" && p.Port == 6990)
		}
	}
	if !found {
		t.Errorf("no Service port for the agents: %+v", svc)
	}
	// A fleet: each replica's own Service carries its agent listener.
	replica := writeConfig(t, `
listeners: [{name: explicit, address: "0.0.0.0:21", tls: explicit}]
backend: {address: "10.0.9.9:21", via: lan}
passive: {public_host: 203.0.113.10, ports: 50000-50299, replicas: 3, replica_index: "1"}
agents:
  listen: "0.0.0.0:6990"
  groups:
    lan: {pins: [`+pin+`]}
`)
	for _, s := range parseServices(t, firewall(t, "--config", replica, "--format", "k8s-service")) {
		has := false
		for _, p := range s.Spec.Ports {
			has = has || p.Name == "agents"
		}
		if perPod := s.Spec.Selector["statefulset.kubernetes.io/pod-name"] != ""; has != perPod {
			t.Errorf("Service %s (per pod: %t) has an agents port: %t", s.Metadata.Name, perPod, has)
		}
	}
	// On loopback no agent reaches the listener: nothing opened.
	lo := writeConfig(t, strings.Replace(`
listeners: [{name: explicit, address: "0.0.0.0:21", tls: explicit}]
backend: {address: "10.0.9.9:21", via: lan}
agents:
  listen: "127.0.0.1:6990"
  groups:
    lan: {pins: [PIN]}
`, "PIN", pin, 1))
	if out := firewall(t, "--config", lo, "--format", "nftables"); strings.Contains(out, "6990") {
		t.Errorf("an agent listener on loopback is opened:\n%s", out)
	}
}
