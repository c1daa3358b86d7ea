package interop

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestDirectVsftpd is the reference without the gateway: curl talks to vsftpd
// directly, in each of vsftpd's modes, PASV and EPSV, 64 MiB up and down. It
// proves the harness (user, PAM, certificates, passive range, curl flags) and
// shows what the same programs do when nothing sits between them.
func TestDirectVsftpd(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	ctx := testContext(t, 4*time.Minute)
	src, sum := sourceFile(t)
	for _, mode := range []tlsMode{tlsNone, tlsExplicit, tlsImplicit} {
		t.Run("vsftpd="+string(mode), func(t *testing.T) {
			v := startVsftpd(ctx, t, mode)
			for _, pasv := range []bool{true, false} {
				t.Run(passiveName(pasv), func(t *testing.T) {
					results.record(t)
					c := curlClient{
						Addr: v.Addr, TLS: mode, CAFile: v.CAFile, PASV: pasv,
						User: v.User.Name, Password: v.User.Password,
					}
					name := fmt.Sprintf("direct-%s-%s.bin", mode, passiveName(pasv))
					roundTrip(t, c, v, src, sum, name, "127.0.0.1", v.PasvLo, v.PasvHi)
				})
			}
		})
	}
}

func passiveName(pasv bool) string {
	if pasv {
		return "PASV"
	}
	return "EPSV"
}

// roundTrip uploads src as name, checks the file vsftpd stored, downloads it
// back and checks that too (after a failed upload, from a copy placed
// directly in vsftpd's directory); each curl run must have used the right passive
// mode, ports in [lo, hi] and, for 227, the advertised host.
func roundTrip(t *testing.T, c curlClient, v *vsftpd, src, sum, name, host string, lo, hi int) {
	t.Helper()
	ctx := testContext(t, 2*curlTimeout)

	up := c.upload(ctx, t, src, name)
	if up.Err != nil {
		// Still try the download, from a copy put in place directly, so one
		// run tells whether the download direction works on its own.
		t.Errorf("upload %s: curl: %v\n%s\n%s", name, up.Err, up, v.diagnostics())
		v.put(t, src, name)
	} else {
		checkPassive(t, "upload", up, c.PASV, host, lo, hi)
		assertSameFile(t, "uploaded file on the backend", filepath.Join(v.Root, name), sum, bigFileSize)
	}

	dst := filepath.Join(t.TempDir(), name)
	down := c.download(ctx, t, name, dst)
	if down.Err != nil {
		t.Fatalf("download %s: curl: %v\n%s\n%s", name, down.Err, down, v.diagnostics())
	}
	checkPassive(t, "download", down, c.PASV, host, lo, hi)
	assertSameFile(t, "downloaded file", dst, sum, bigFileSize)
	t.Logf("%s: up %v, down %v", name, up.Duration.Round(time.Millisecond), down.Duration.Round(time.Millisecond))
}
