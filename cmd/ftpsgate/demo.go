package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ftpsgate/ftpsgate/configs"
	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
)

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo [--dir DIR]", "Runs the gateway on its embedded default configuration (configs/demo.yaml) in front of an\n"+
		"embedded plain-FTP server (user demo, password demo) that serves DIR or a temporary directory:\n"+
		"explicit FTPS on 127.0.0.1:2121, implicit FTPS on 127.0.0.1:2990, passive ports 50000-50019.", stderr)
	dir := fs.String("dir", "", "directory to serve (default: a new temporary directory, removed at exit)")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	root := *dir
	if root == "" {
		tmp, err := os.MkdirTemp("", "ftpsgate-demo-")
		if err != nil {
			fmt.Fprintf(stderr, "ftpsgate demo: %v\n", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	backend, err := demoftpd.Start(ctx, demoftpd.Config{Root: root, User: "demo", Password: "demo"})
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate demo: embedded FTP server: %v\n", err)
		return 1
	}
	defer backend.Close()

	cfg, err := loadBytes(configs.Demo, map[string]any{"backend.address": backend.Addr()})
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate demo: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, `ftpsgate demo: serving %s through the gateway (user demo, password demo).
The certificate is self-signed, hence curl's -k. Try:

  echo hello > hello.txt
  curl -k --ssl-reqd -u demo:demo -T hello.txt ftp://127.0.0.1:2121/         # upload, explicit FTPS
  curl -k --ssl-reqd -u demo:demo ftp://127.0.0.1:2121/                      # list
  curl -k --ssl-reqd -u demo:demo -o copy.txt ftp://127.0.0.1:2121/hello.txt # download
  curl -k -u demo:demo ftps://127.0.0.1:2990/hello.txt                       # download, implicit FTPS
  curl -k --ssl-reqd --disable-epsv -u demo:demo ftp://127.0.0.1:2121/       # PASV instead of EPSV

Stop with Ctrl-C.
`, root)
	return serveContext(ctx, cfg, stderr)
}
