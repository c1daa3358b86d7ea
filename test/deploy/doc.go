// Package deploy tests the deployment files under deploy/ with the tools
// that read them: the systemd unit with systemd-analyze (verify, and
// security --offline for its exposure score), the Kubernetes manifests
// rendered with kustomize and checked against the gateway configuration
// they carry. A missing tool skips its test, with the reason.
package deploy
