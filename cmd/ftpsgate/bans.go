package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/admin"
)

const bansHelp = `Lists, adds or lifts bans through the running gateway's admin API
(admin.address in its configuration). On a TCP address the API wants the
bearer token of admin.token_file: --config reads both; with --admin, give
--token-file. A unix socket (unix:/path) needs no token. With a fleet
section the bans are the fleet's (in Redis): a change through any replica
holds on every replica within a second.

  ftpsgate bans list   [--config FILE | --admin ADDRESS [--token-file FILE]]
  ftpsgate bans add    [...] [--duration 1h] [--reason TEXT] IP
  ftpsgate bans remove [...] IP`

func cmdBans(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintln(stderr, "Usage: ftpsgate bans list|add|remove\n\n"+bansHelp)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	verb := args[0]
	fs := newFlagSet("bans "+verb, bansHelp, stderr)
	config := fs.String("config", "", "the gateway's configuration file: admin.address and admin.token_file are read from it")
	address := fs.String("admin", "", "the admin API address (127.0.0.1:9090 or unix:/path), instead of --config")
	tokenFile := fs.String("token-file", "", "file holding the bearer token, with --admin")
	duration := fs.Duration("duration", 0, "add: how long (0: the configured bans.duration)")
	reason := fs.String("reason", "", "add: why, for the log")
	if err := fs.Parse(args[1:]); err != nil {
		if err.Error() == "flag: help requested" {
			return 0
		}
		return 2
	}
	addr, token := *address, ""
	if *config != "" {
		cfg, err := loadFile(*config)
		if err != nil {
			fmt.Fprintf(stderr, "ftpsgate bans: %v\n", err)
			return 1
		}
		addr, *tokenFile = cfg.admin.Address, cfg.admin.TokenFile
	}
	if addr == "" {
		fmt.Fprintln(stderr, "ftpsgate bans: no admin API: give --config FILE (with admin.address set) or --admin ADDRESS")
		return 2
	}
	if *tokenFile != "" {
		tok, err := admin.ReadToken(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "ftpsgate bans: token file: %v\n", err)
			return 1
		}
		token = tok
	} else if !strings.HasPrefix(addr, "unix:") {
		fmt.Fprintf(stderr, "ftpsgate bans: %s is a TCP address and the admin API wants a token there: give --token-file (or --config with admin.token_file)\n", addr)
		return 2
	}
	client, err := admin.NewClient(addr, token)
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate bans: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ipArg := func() (netip.Addr, bool) {
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "ftpsgate bans %s: give one IP address\n", verb)
			return netip.Addr{}, false
		}
		ip, err := netip.ParseAddr(fs.Arg(0))
		if err != nil {
			fmt.Fprintf(stderr, "ftpsgate bans %s: %v\n", verb, err)
			return netip.Addr{}, false
		}
		return ip, true
	}
	switch verb {
	case "list":
		bans, err := client.ListBans(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "ftpsgate bans list: %v\n", err)
			return 1
		}
		if len(bans) == 0 {
			fmt.Fprintln(stdout, "no bans")
		}
		for _, b := range bans {
			fmt.Fprintf(stdout, "%s\tuntil %s\t%s\n", b.IP, b.Until.UTC().Format(time.RFC3339), b.Reason)
		}
	case "add":
		ip, ok := ipArg()
		if !ok {
			return 2
		}
		b, err := client.AddBan(ctx, ip, *duration, *reason)
		if err != nil {
			fmt.Fprintf(stderr, "ftpsgate bans add: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "banned %s until %s\n", b.IP, b.Until.UTC().Format(time.RFC3339))
	case "remove":
		ip, ok := ipArg()
		if !ok {
			return 2
		}
		if err := client.RemoveBan(ctx, ip); err != nil {
			fmt.Fprintf(stderr, "ftpsgate bans remove: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "unbanned %s\n", ip)
	default:
		fmt.Fprintf(stderr, "ftpsgate bans: unknown command %q (want list, add or remove)\n", verb)
		return 2
	}
	return 0
}
