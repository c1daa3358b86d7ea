package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ftpsgate/ftpsgate/admin"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// backendLister adapts the proxy's backends, and the agents of their
// groups, to the admin API (GET /v1/backends).
type backendLister struct {
	srv *proxy.Server
	hub *tunnel.Hub // nil: no agent listener
}

func (l backendLister) Backends() []admin.BackendInfo {
	var out []admin.BackendInfo
	for _, b := range l.srv.Backends() {
		bi := admin.BackendInfo{
			Name: b.Name, Address: b.Address, Via: b.Via, Pools: b.Pools, State: b.State, Checked: b.Checked,
			Since: b.Since, LastError: b.LastError, Sessions: b.Sessions,
		}
		if b.Via != "" && l.hub != nil {
			for _, a := range l.hub.AgentsOf(b.Via) {
				bi.Agents = append(bi.Agents, admin.AgentInfo{Name: a.Name, Address: a.Remote, Pin: a.Pin, Connected: a.Since, Streams: a.Streams, State: a.State})
			}
		}
		out = append(out, bi)
	}
	return out
}

const backendsHelp = `Lists the running gateway's backends through its admin API
(admin.address in its configuration): address, agent group (via), pools,
health (up, down, or unknown: not checked or no result yet) and since when,
the last check's error, the sessions on it now, and for a backend reached
through agents, each connected agent with its pin's first characters.
On a TCP address the API wants the bearer token of admin.token_file:
--config reads both; with --admin, give --token-file.

  ftpsgate backends [--config FILE | --admin ADDRESS [--token-file FILE]] [--json]`

func cmdBackends(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("backends", backendsHelp, stderr)
	config := fs.String("config", "", "the gateway's configuration file: admin.address and admin.token_file are read from it")
	address := fs.String("admin", "", "the admin API address (127.0.0.1:9090 or unix:/path), instead of --config")
	tokenFile := fs.String("token-file", "", "file holding the bearer token, with --admin")
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a table")
	if ok, exit := parseFlags(fs, args); !ok {
		return exit
	}
	addr, token := *address, ""
	if *config != "" {
		cfg, err := loadFile(*config)
		if err != nil {
			fmt.Fprintf(stderr, "ftpsgate backends: %v\n", err)
			return 1
		}
		addr, *tokenFile = cfg.admin.Address, cfg.admin.TokenFile
	}
	switch {
	case addr == "":
		fmt.Fprintln(stderr, "ftpsgate backends: no admin API: give --config FILE (with admin.address set) or --admin ADDRESS")
		return 2
	case *tokenFile != "":
		tok, err := admin.ReadToken(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "ftpsgate backends: token file: %v\n", err)
			return 1
		}
		token = tok
	case !strings.HasPrefix(addr, "unix:"):
		fmt.Fprintf(stderr, "ftpsgate backends: %s is a TCP address and the admin API wants a token there: give --token-file (or --config with admin.token_file)\n", addr)
		return 2
	}
	client, err := admin.NewClient(addr, token)
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate backends: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := client.ListBackends(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate backends: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(list)
		return 0
	}
	printBackends(stdout, list, time.Now())
	return 0
}

// printBackends writes list as a table, an agent a line under its backend.
func printBackends(w io.Writer, list []admin.BackendInfo, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tVIA\tPOOLS\tSTATE\tSINCE\tSESSIONS\tLAST ERROR")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, b := range list {
		state := b.State
		if !b.Checked {
			state += " (not checked)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", b.Name, b.Address, dash(b.Via), dash(strings.Join(b.Pools, ",")),
			state, ago(now, b.Since), b.Sessions, dash(b.LastError))
		for _, a := range b.Agents {
			fmt.Fprintf(tw, "  agent %s\t%s\tpin %s\t\t%s\t%s\t%d streams\t\n", a.Name, a.Address, a.Pin, dash(a.State), ago(now, a.Connected), a.Streams)
		}
	}
	_ = tw.Flush()
}

// ago is how long before now t was, to the second ("-" for no time).
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Truncate(time.Second).String() + " ago"
}
