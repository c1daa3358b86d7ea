package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ftpsgate/ftpsgate/nat"
)

// kustomizeVersion is the kustomize the test runs with `go run` when no
// kubectl with kustomize v4 or later is installed (Debian 12's
// kubernetes-client, kubectl 1.20, bundles kustomize 2.0.3, which cannot
// take a directory in resources). v5.7.1 builds with this Go.
const kustomizeVersion = "sigs.k8s.io/kustomize/kustomize/v5@v5.7.1"

// kustomize returns the command that renders a kustomization directory.
func kustomize(t *testing.T) []string {
	t.Helper()
	if bin, err := exec.LookPath("kubectl"); err == nil {
		out, _ := exec.Command(bin, "version", "--client").CombinedOutput()
		if m := regexp.MustCompile(`Kustomize Version: v(\d+)`).FindSubmatch(out); m != nil && string(m[1]) >= "4" && len(m[1]) == 1 {
			return []string{bin, "kustomize"}
		}
	}
	if os.Getenv("FTPSGATE_INTEROP") != "1" {
		t.Skipf("no kubectl with kustomize v4+; with FTPSGATE_INTEROP=1 the test runs go run %s", kustomizeVersion)
	}
	return []string{"go", "run", kustomizeVersion, "build"}
}

// object is one rendered manifest.
type object map[string]any

func (o object) kind() string { return str(o, "kind") }
func (o object) name() string { return str(o, "metadata", "name") }

// get walks maps and lists ("0" indexes a list).
func get(v any, keys ...string) any {
	for _, k := range keys {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case object:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, keys ...string) string { s, _ := get(v, keys...).(string); return s }
func list(v any, keys ...string) []any { l, _ := get(v, keys...).([]any); return l }
func num(v any, keys ...string) int    { n, _ := get(v, keys...).(int); return n }

func render(t *testing.T, overlay string) []object {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	argv := append(kustomize(t), "../../deploy/kubernetes/overlays/"+overlay)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("rendered %s: %v", overlay, err)
		}
		objs = append(objs, o)
	}
}

func byKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// gatewayConfig is the part of the rendered ConfigMap's ftpsgate.yaml the
// checks need.
type gatewayConfig struct {
	Listeners []struct {
		Name, Address string
	} `yaml:"listeners"`
	TLS struct {
		CertFile string `yaml:"cert_file"`
	} `yaml:"tls"`
	Backend struct {
		Address string `yaml:"address"`
	} `yaml:"backend"`
	Passive struct {
		Ports        string `yaml:"ports"`
		Replicas     int    `yaml:"replicas"`
		ReplicaIndex string `yaml:"replica_index"`
	} `yaml:"passive"`
	Admin struct {
		Address string `yaml:"address"`
	} `yaml:"admin"`
}

func configOf(t *testing.T, objs []object) (gatewayConfig, nat.PortRange, map[int]bool) {
	t.Helper()
	cms := byKind(objs, "ConfigMap")
	if len(cms) != 1 || !strings.HasPrefix(cms[0].name(), "ftpsgate-config") {
		t.Fatalf("want one ConfigMap ftpsgate-config-*, got %d", len(cms))
	}
	var c gatewayConfig
	if err := yaml.Unmarshal([]byte(str(cms[0], "data", "ftpsgate.yaml")), &c); err != nil {
		t.Fatalf("the ConfigMap's ftpsgate.yaml: %v", err)
	}
	all, err := nat.ParsePortRange(c.Passive.Ports)
	if err != nil {
		t.Fatal(err)
	}
	control := map[int]bool{}
	for _, l := range c.Listeners {
		var port int
		fmt.Sscan(l.Address[strings.LastIndexByte(l.Address, ':')+1:], &port)
		control[port] = true
	}
	return c, all, control
}

// servicePorts are a Service's ports as port -> targetPort.
func servicePorts(t *testing.T, svc object) map[int]int {
	t.Helper()
	out := map[int]int{}
	for _, p := range list(svc, "spec", "ports") {
		port, target := num(p, "port"), num(p, "targetPort")
		if target == 0 {
			target = port
		}
		if str(p, "protocol") != "TCP" {
			t.Errorf("service %s port %d: protocol %q", svc.name(), port, str(p, "protocol"))
		}
		out[port] = target
	}
	return out
}

// checkHardened checks a gateway container and its pod spec.
func checkHardened(t *testing.T, what string, pod any, c any) {
	t.Helper()
	sc := func(key string) any {
		if v := get(c, "securityContext", key); v != nil {
			return v
		}
		return get(pod, "securityContext", key)
	}
	if sc("runAsNonRoot") != true || sc("readOnlyRootFilesystem") != true || sc("allowPrivilegeEscalation") != false {
		t.Errorf("%s: runAsNonRoot %v, readOnlyRootFilesystem %v, allowPrivilegeEscalation %v", what, sc("runAsNonRoot"), sc("readOnlyRootFilesystem"), sc("allowPrivilegeEscalation"))
	}
	if drop := list(c, "securityContext", "capabilities", "drop"); len(drop) != 1 || drop[0] != "ALL" {
		t.Errorf("%s: capabilities.drop %v, want [ALL]", what, drop)
	}
	if get(pod, "automountServiceAccountToken") != false {
		t.Errorf("%s: the service account token is mounted", what)
	}
}

// checkCertSecret: the certificate's directory is a Secret volume mounted
// whole (a subPath mount would never see a renewed certificate).
func checkCertSecret(t *testing.T, what string, pod, c any, certFile string) {
	t.Helper()
	dir := path.Dir(certFile)
	for _, m := range list(c, "volumeMounts") {
		if str(m, "mountPath") != dir {
			continue
		}
		if str(m, "subPath") != "" {
			t.Errorf("%s: %s mounted with subPath: rotation would not reach it", what, dir)
		}
		for _, v := range list(pod, "volumes") {
			if str(v, "name") == str(m, "name") && str(v, "secret", "secretName") != "" {
				return
			}
		}
	}
	t.Errorf("%s: no Secret volume mounted at %s (tls.cert_file %s)", what, dir, certFile)
}

func gatewayContainer(t *testing.T, pod any) any {
	t.Helper()
	for _, c := range list(pod, "containers") {
		if str(c, "name") == "ftpsgate" {
			return c
		}
	}
	t.Fatal("no container named ftpsgate")
	return nil
}

func TestKubernetesSidecar(t *testing.T) {
	objs := render(t, "sidecar")
	c, all, control := configOf(t, objs)
	if !strings.HasPrefix(c.Backend.Address, "127.0.0.1:") && !strings.HasPrefix(c.Backend.Address, "localhost:") {
		t.Errorf("sidecar backend %s: want the pod's localhost", c.Backend.Address)
	}
	deps := byKind(objs, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("%d Deployments", len(deps))
	}
	pod := get(deps[0], "spec", "template", "spec")
	if n := len(list(pod, "containers")); n != 2 {
		t.Errorf("sidecar pod with %d containers, want the legacy server and ftpsgate", n)
	}
	gw := gatewayContainer(t, pod)
	checkHardened(t, "sidecar", pod, gw)
	checkCertSecret(t, "sidecar", pod, gw, c.TLS.CertFile)
	labels, _ := get(deps[0], "spec", "template", "metadata", "labels").(map[string]any)
	exposed := map[int]int{}
	for _, svc := range byKind(objs, "Service") {
		sel, _ := get(svc, "spec", "selector").(map[string]any)
		for k, v := range sel {
			if labels[k] != v {
				t.Fatalf("service %s selects %v, not the pod (%v)", svc.name(), sel, labels)
			}
		}
		for p, tp := range servicePorts(t, svc) {
			exposed[p] = tp
		}
	}
	checkExposed(t, "sidecar", exposed, control, all)
}

// checkExposed: every passive port exposed as itself, the control ports
// to the listeners, and nothing else.
func checkExposed(t *testing.T, what string, exposed map[int]int, control map[int]bool, passive nat.PortRange) {
	t.Helper()
	for p := int(passive.Low); passive.Size() > 0 && p <= int(passive.High); p++ {
		if tp, ok := exposed[p]; !ok || tp != p {
			t.Errorf("%s: passive port %d not exposed as itself (target %d, exposed %v)", what, p, tp, ok)
		}
	}
	targets := map[int]bool{}
	for p, tp := range exposed {
		if passive.Contains(uint16(p)) {
			continue
		}
		if !control[tp] {
			t.Errorf("%s: port %d -> %d is neither a listener nor a passive port", what, p, tp)
		}
		targets[tp] = true
	}
	for p := range control {
		if !targets[p] {
			t.Errorf("%s: listener port %d not exposed", what, p)
		}
	}
}

func TestKubernetesFleet(t *testing.T) {
	objs := render(t, "fleet")
	c, all, control := configOf(t, objs)
	sts := byKind(objs, "StatefulSet")
	if len(sts) != 1 {
		t.Fatalf("%d StatefulSets", len(sts))
	}
	set := sts[0]
	n := num(set, "spec", "replicas")
	if n != c.Passive.Replicas || n < 2 || c.Passive.ReplicaIndex != "hostname" {
		t.Fatalf("StatefulSet replicas %d, passive.replicas %d, replica_index %q: want equal, and the index from the pod name", n, c.Passive.Replicas, c.Passive.ReplicaIndex)
	}
	pod := get(set, "spec", "template", "spec")
	gw := gatewayContainer(t, pod)
	checkHardened(t, "fleet", pod, gw)
	checkCertSecret(t, "fleet", pod, gw, c.TLS.CertFile)
	if str(gw, "readinessProbe", "httpGet", "path") != "/readyz" || str(gw, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("probes: readiness %v, liveness %v", get(gw, "readinessProbe"), get(gw, "livenessProbe"))
	}
	appLabel := str(set, "spec", "template", "metadata", "labels", "app.kubernetes.io/name")
	perPod := map[string]map[int]int{}
	shared := map[int]int{}
	for _, svc := range byKind(objs, "Service") {
		if str(svc, "spec", "clusterIP") == "None" {
			continue // headless: pod DNS only, nothing published
		}
		if pod := str(svc, "spec", "selector", "statefulset.kubernetes.io/pod-name"); pod != "" {
			perPod[pod] = servicePorts(t, svc)
			continue
		}
		if str(svc, "spec", "selector", "app.kubernetes.io/name") != appLabel {
			continue // Redis
		}
		for p, tp := range servicePorts(t, svc) {
			if all.Contains(uint16(p)) {
				t.Errorf("service %s sends passive port %d to any replica", svc.name(), p)
			}
			shared[p] = tp
		}
	}
	checkExposed(t, "fleet control", shared, control, nat.PortRange{})
	for i := 0; i < n; i++ {
		podName := fmt.Sprintf("%s-%d", set.name(), i)
		slice, err := all.Slice(n, i)
		if err != nil {
			t.Fatal(err)
		}
		ports, ok := perPod[podName]
		if !ok {
			t.Errorf("no passive Service selects pod %s", podName)
			continue
		}
		checkExposed(t, "passive service of "+podName, ports, nil, slice)
		delete(perPod, podName)
	}
	if len(perPod) > 0 {
		t.Errorf("passive Services select pods the StatefulSet has not: %v", perPod)
	}
	checkFleetExtras(t, objs, appLabel)
}

// checkFleetExtras: Redis, the disruption budget and the gateways'
// egress policy.
func checkFleetExtras(t *testing.T, objs []object, appLabel string) {
	t.Helper()
	redis := false
	for _, d := range byKind(objs, "Deployment") {
		if strings.Contains(str(d, "spec", "template", "spec", "containers", "0", "image"), "redis") {
			redis = true
		}
	}
	if !redis {
		t.Error("no Redis Deployment")
	}
	pdbs := byKind(objs, "PodDisruptionBudget")
	if len(pdbs) != 1 || str(pdbs[0], "spec", "selector", "matchLabels", "app.kubernetes.io/name") != appLabel {
		t.Errorf("PodDisruptionBudget for the gateways: %v", pdbs)
	}
	var egress object
	for _, np := range byKind(objs, "NetworkPolicy") {
		if str(np, "spec", "podSelector", "matchLabels", "app.kubernetes.io/name") == appLabel {
			egress = np
		}
	}
	if egress == nil {
		t.Fatal("no NetworkPolicy for the gateways")
	}
	types := fmt.Sprint(list(egress, "spec", "policyTypes"))
	rules := list(egress, "spec", "egress")
	if !strings.Contains(types, "Egress") || len(rules) != 3 {
		t.Errorf("gateways' NetworkPolicy: types %s, %d egress rules (want backend, Redis, DNS)", types, len(rules))
	}
	for _, r := range rules {
		if len(list(r, "to")) == 0 {
			t.Errorf("an egress rule without a destination lets the gateways reach anything: %v", r)
		}
	}
}
