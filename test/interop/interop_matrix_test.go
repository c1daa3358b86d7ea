package interop

import (
	"testing"
	"time"
)

// TestInteropMatrix is issue 3's matrix: every client × backend × mode (see
// doc.go for the design). One backend and one gateway (explicit and implicit
// listeners, active.enabled: true) per backend configuration; backends run
// in parallel (go test -parallel, GOMAXPROCS: two at a time on CI's two
// cores), the cells of one backend one after the other.
func TestInteropMatrix(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	fx := getFixtures(t)
	bigClients := []ftpClientKind{curlKind{}, lftpKind{}, goftpKind{}, ftplibKind{resume: true}}
	for bi, spec := range matrixBackends {
		t.Run(spec.String(), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 10*time.Minute)
			srv := startServer(ctx, t, spec)
			cfg := newGatewayConfig(t, srv.Addr, spec.Mode, srv.CAFile)
			cfg.Active = true
			gw := startGateway(ctx, t, cfg)
			start := time.Now()

			// Every client in every mode: the basic operations.
			for _, cl := range matrixClients {
				for _, m := range cellModes {
					runCell(ctx, t, gw, srv, fx, cl, m, opsBasic)
				}
			}
			// Every client once per backend: the full operations, in a mode
			// that rotates with the backend and the client.
			for ci, cl := range matrixClients {
				runCell(ctx, t, gw, srv, fx, cl, rotateMode(cl, spec.String(), opsFull, bi+ci), opsFull)
			}
			// One client per backend: 256 MiB up and down.
			cl := bigClients[bi%len(bigClients)]
			runCell(ctx, t, gw, srv, fx, cl, rotateMode(cl, spec.String(), opsBig, bi), opsBig)

			t.Logf("%s: %v", spec, time.Since(start).Round(time.Millisecond))
			gw.assertLogOmits(t, srv.User.Password)
		})
	}
}

// rotateMode is the i-th mode (cyclically) that the client supports and
// that no known limitation of the client rules out, so that the full and
// big operations really run (a client whose every mode is limited gets the
// i-th supported one, and its cell shows the limitation).
func rotateMode(cl ftpClientKind, backend string, ops opSet, i int) cellMode {
	var fallback *cellMode
	for k := range cellModes {
		m := cellModes[(i+k)%len(cellModes)]
		if cl.Unsupported(m) != "" {
			continue
		}
		if findKnown(cl.Name(), backend, m.String(), ops) == nil {
			return m
		}
		if fallback == nil {
			fallback = &m
		}
	}
	if fallback != nil {
		return *fallback
	}
	return cellModes[0]
}

// ftplibOptionalReuse is stock ftplib against a gateway configured with
// tls.data_session_reuse: optional, the README's advice for it. It has its
// own name so that the stock client's known limitation does not apply.
type ftplibOptionalReuse struct{ ftplibKind }

func (ftplibOptionalReuse) Name() string { return "ftplib (data_session_reuse: optional)" }

// TestStockFtplibWithOptionalReuse: Python's ftplib as shipped, which does
// not resume TLS sessions on data connections, works once the gateway does
// not require it; against vsftpd with require_ssl_reuse=YES behind, whose
// own reuse the gateway satisfies on its side.
func TestStockFtplibWithOptionalReuse(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	fx := getFixtures(t)
	for _, spec := range []backendSpec{{kindVsftpd, tlsNone}, {kindVsftpd, tlsExplicit}} {
		t.Run(spec.String(), func(t *testing.T) {
			ctx := testContext(t, 3*time.Minute)
			srv := startServer(ctx, t, spec)
			cfg := newGatewayConfig(t, srv.Addr, spec.Mode, srv.CAFile)
			cfg.SessionReuse = "optional"
			gw := startGateway(ctx, t, cfg)
			cl := ftplibOptionalReuse{ftplibKind{resume: false}}
			runCell(ctx, t, gw, srv, fx, cl, cellModes[1], opsBasic)
			runCell(ctx, t, gw, srv, fx, cl, cellModes[2], opsFull)
		})
	}
}
