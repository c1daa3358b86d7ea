package interop

import (
	"fmt"
	"testing"
	"time"
)

// TestGatewayMatrix is the acceptance of issue 2 with real programs: curl ->
// ftpsgate -> vsftpd for every vsftpd mode (plain, explicit FTPS and implicit
// FTPS, both with require_ssl_reuse=YES) × gateway front (explicit, implicit)
// × PASV/EPSV, 64 MiB up and down, SHA-256 compared, every 227/229 port in
// passive.ports and the 227 host equal to passive.public_host. The gateway's
// debug log must not contain the password.
func TestGatewayMatrix(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	ctx := testContext(t, 5*time.Minute)
	src, sum := sourceFile(t)
	for _, backend := range []tlsMode{tlsNone, tlsExplicit, tlsImplicit} {
		t.Run("vsftpd="+string(backend), func(t *testing.T) {
			v := startVsftpd(ctx, t, backend)
			cfg := newGatewayConfig(t, v.Addr, backend, v.CAFile)
			gw := startGateway(ctx, t, cfg)
			for _, front := range []tlsMode{tlsExplicit, tlsImplicit} {
				for _, pasv := range []bool{true, false} {
					t.Run(fmt.Sprintf("front=%s/%s", front, passiveName(pasv)), func(t *testing.T) {
						results.record(t)
						defer func() {
							if t.Failed() {
								t.Log(gw.diagnostics())
							}
						}()
						name := fmt.Sprintf("gw-%s-%s-%s.bin", backend, front, passiveName(pasv))
						roundTrip(t, gw.client(front, pasv, v.User), v, src, sum, name,
							cfg.PublicHost, cfg.PassiveLo, cfg.PassiveHi)
					})
				}
			}
			gw.assertLogOmits(t, v.User.Password)
		})
	}
}
