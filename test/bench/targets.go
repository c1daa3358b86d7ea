package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// startTargets starts the two vsftpd backends, the two gateways and the
// two mod_proxy instances. A target that cannot start is kept with its
// reason, so the table says n/a and why.
func startTargets(ctx context.Context, e *env, noModProxy bool) ([]*target, []string) {
	var versions []string
	targets := map[string]*target{}
	for _, k := range targetOrder {
		targets[k] = &target{key: k}
	}
	for _, b := range passiveBlocks {
		if err := checkBindable(b); err != nil {
			for _, t := range targets {
				t.na = err.Error()
			}
			return ordered(targets), versions
		}
	}
	versions = append(versions, programVersions()...)
	plain, errPlain := startVsftpd(ctx, e, false, passiveBlocks[0])
	ftps, errFTPS := startVsftpd(ctx, e, true, passiveBlocks[1])
	fail := func(err error, keys ...string) {
		for _, k := range keys {
			if targets[k].na == "" {
				targets[k].na = oneLine(err)
			}
		}
	}
	if errPlain != nil {
		fail(fmt.Errorf("vsftpd (plain) did not start: %w", errPlain), tGwPlain, tMpPlain)
	} else {
		e.plainBackend = plain.Addr
	}
	if errFTPS != nil {
		fail(fmt.Errorf("vsftpd (FTPS) did not start: %w", errFTPS), tDirect, tGwTLS, tMpTLS)
	} else {
		t := targets[tDirect]
		t.addr, t.mem = ftps.Addr, treePss(ftps.proc.pid())
	}
	if errPlain == nil {
		if g, err := startGateway(ctx, e, "ftpsgate-plain", plain.Addr, "none", passiveBlocks[2]); err != nil {
			fail(err, tGwPlain)
		} else {
			t := targets[tGwPlain]
			t.addr, t.cpu, t.mem = g.Addr, processCPU(g.proc.pid()), rssOf(g.proc.pid())
		}
	}
	if errFTPS == nil {
		if g, err := startGateway(ctx, e, "ftpsgate-ftps", ftps.Addr, "explicit", passiveBlocks[3]); err != nil {
			fail(err, tGwTLS)
		} else {
			t := targets[tGwTLS]
			t.addr, t.cpu, t.mem = g.Addr, processCPU(g.proc.pid()), rssOf(g.proc.pid())
		}
	}
	switch {
	case noModProxy:
		fail(errors.New("mod_proxy skipped (--no-modproxy)"), tMpPlain, tMpTLS)
	default:
		logf("checking ProFTPD mod_proxy in %s", proftpdPrefix)
		if err := ensureProftpd(ctx, e.dir); err != nil {
			fail(fmt.Errorf("ProFTPD mod_proxy unavailable: %w", err), tMpPlain, tMpTLS)
			break
		}
		versions = append(versions, proftpdVersion())
		for _, x := range []struct {
			key     string
			be      *vsftpd
			tls     bool
			pasv    portBlock
			beStart error
		}{
			{tMpPlain, plain, false, passiveBlocks[4], errPlain},
			{tMpTLS, ftps, true, passiveBlocks[5], errFTPS},
		} {
			if x.beStart != nil {
				continue
			}
			m, err := startModProxy(ctx, e, "modproxy-"+strings.TrimPrefix(x.key, "mp-"), x.be.Addr, x.tls, x.pasv)
			if err != nil {
				fail(fmt.Errorf("mod_proxy did not start: %w", err), x.key)
				continue
			}
			t := targets[x.key]
			t.addr, t.cpu, t.mem = m.Addr, treeCPU(m.proc.pid()), treePss(m.proc.pid())
		}
	}
	// One session each (login, EPSV, LIST, QUIT): a target that fails it is
	// left out with the error.
	for _, k := range targetOrder {
		t := targets[k]
		if t.na != "" {
			continue
		}
		if _, err := oneSession(ctx, e, t.addr); err != nil {
			t.na = "smoke session failed: " + oneLine(err)
		}
	}
	for _, k := range targetOrder {
		if t := targets[k]; t.na != "" {
			logf("%s: n/a: %s", k, t.na)
		}
	}
	return ordered(targets), versions
}

func ordered(m map[string]*target) []*target {
	var out []*target
	for _, k := range targetOrder {
		out = append(out, m[k])
	}
	return out
}
