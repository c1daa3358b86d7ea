package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/admin"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// agentAdminFile is agent.yaml's admin section: the agent's read-only HTTP
// endpoint (GET /healthz, GET /metrics), named as the gateway's admin API.
type agentAdminFile struct {
	Address   string `mapstructure:"address"`
	TokenFile string `mapstructure:"token_file"`
}

// agentAdmin is the admin section, checked.
type agentAdmin struct {
	address  string   // host:port; "": off
	loopback bool     // the host is a loopback address or localhost
	token    [32]byte // SHA-256 of the bearer token /metrics needs
	hasToken bool
}

// buildAgentAdmin checks the section; errors name keys relative to it.
func buildAgentAdmin(f agentAdminFile) (agentAdmin, error) {
	var a agentAdmin
	if f.Address == "" {
		if f.TokenFile != "" {
			return a, confkey.Errorf("token_file", "set but address is empty (the endpoint is off)")
		}
		return a, nil
	}
	var errs []error
	host, port, err := net.SplitHostPort(f.Address)
	if err != nil {
		errs = append(errs, confkey.Errorf("address", "%q: want host:port (%v)", f.Address, err))
	} else if p, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(p, 10) != port {
		errs = append(errs, confkey.Errorf("address", "%q: port %q is not a number from 0 to 65535", f.Address, port))
	} else if strings.EqualFold(host, "localhost") {
		a.address, a.loopback = f.Address, true
	} else if host == "" {
		a.address = f.Address // every interface
	} else if ip, err := netip.ParseAddr(host); err != nil || ip.Zone() != "" {
		errs = append(errs, confkey.Errorf("address", "%q: the host must be an IP address or localhost", f.Address))
	} else {
		a.address, a.loopback = net.JoinHostPort(ip.String(), port), ip.Unmap().IsLoopback()
	}
	if f.TokenFile != "" {
		tok, err := admin.ReadToken(f.TokenFile)
		if err != nil {
			errs = append(errs, confkey.New("token_file", err))
		}
		a.token, a.hasToken = sha256.Sum256([]byte(tok)), err == nil
	}
	return a, errors.Join(errs...)
}

// warnings: an endpoint on a non-loopback address lets the network reach
// the agent, which otherwise accepts no connection at all.
func (a agentAdmin) warnings() []tunnel.Warning {
	if a.address == "" || a.loopback {
		return nil
	}
	text := a.address + " is not a loopback address: the agent, which otherwise accepts no connection, listens on the network"
	if a.hasToken {
		text += " (/healthz answers anyone; /metrics needs the token)"
	} else {
		text += " and answers /healthz and /metrics to anyone who reaches it (no token_file)"
	}
	return []tunnel.Warning{{Key: "admin.address", Text: text}}
}

// agentAPI is the agent's running admin endpoint.
type agentAPI struct {
	ln  net.Listener
	srv *http.Server
}

// startAgentAPI listens on cfg.address and serves GET /healthz (no token:
// what a monitor asks) and GET /metrics (the bearer token when
// token_file is set).
func startAgentAPI(cfg agentAdmin, ag *tunnel.Agent, reg *prometheus.Registry, log zerolog.Logger) (*agentAPI, error) {
	ln, err := net.Listen("tcp", cfg.address)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", ag.HealthHandler())
	var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if cfg.hasToken {
		metrics = bearer(cfg.token, metrics)
	}
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: stdlog.New(log.With().Str("component", "admin").Logger(), "", 0)}
	go func() { _ = srv.Serve(ln) }()
	return &agentAPI{ln: ln, srv: srv}, nil
}

func (a *agentAPI) addr() string { return a.ln.Addr().String() }

func (a *agentAPI) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

// bearer lets through requests carrying the token whose hash is want.
func bearer(want [32]byte, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftpsgate-agent"`)
			http.Error(w, fmt.Sprintf("%d unauthorized", http.StatusUnauthorized), http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
