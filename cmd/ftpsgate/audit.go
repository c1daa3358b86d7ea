package main

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ftpsgate/ftpsgate/audit"
)

const auditUsage = `Usage:
  ftpsgate audit verify [--key PUB.pem] FILE...
        check the hash chain through FILEs, in order (the rotated files oldest
        first, then the current one: audit-*.jsonl audit.jsonl), and with
        --key the checkpoints' signatures; exit 1 naming the first record
        altered, removed or inserted (file:line)
  ftpsgate audit tail [-n N] [--kind K] FILE
        print the last N records (of kind K) one line each: time, kind,
        key=value pairs
`

// cmdAudit runs "ftpsgate audit verify|tail".
func cmdAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(args[1:], stdout, stderr)
	case "tail":
		return cmdAuditTail(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, auditUsage)
		return 0
	}
	fmt.Fprintf(stderr, "ftpsgate audit: unknown command %q\n\n%s", args[0], auditUsage)
	return 2
}

func cmdAuditVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit verify [--key PUB.pem] FILE...", "Checks the hash chain of audit files, in the order given, and the checkpoints' signatures with --key.", stderr)
	key := fs.String("key", "", "the checkpoint key's public half (PEM, PKIX: openssl pkey -pubout)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "ftpsgate audit verify: FILE... is required")
		return 2
	}
	var pub ed25519.PublicKey
	if *key != "" {
		var err error
		if pub, err = audit.LoadPublicKey(*key); err != nil {
			fmt.Fprintf(stderr, "ftpsgate audit verify: --key: %v\n", err)
			return 2
		}
	}
	v, err := audit.Verify(fs.Args(), pub)
	if err != nil {
		var p *audit.Problem
		if errors.As(err, &p) {
			fmt.Fprintf(stdout, "FAILED: %v\n", p)
			fmt.Fprintf(stdout, "%d records checked before it\n", v.Records-1)
			return 1
		}
		fmt.Fprintf(stderr, "ftpsgate audit verify: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "ok: %d records in %d files, chain head %s\n", v.Records, v.Files, v.Head)
	switch {
	case v.Checkpoints == 0:
		fmt.Fprintln(stdout, "no checkpoint: the chain shows edits, removals and insertions, but not a rewrite of the whole tail")
	case pub == nil:
		fmt.Fprintf(stdout, "%d checkpoints, signatures not checked (no --key)\n", v.Checkpoints)
	default:
		fmt.Fprintf(stdout, "%d checkpoints, every signature verified\n", v.Signed)
	}
	if v.Unsigned > 0 && v.Checkpoints > 0 {
		fmt.Fprintf(stdout, "%d records after the last checkpoint: their removal from the end would not show\n", v.Unsigned)
	}
	if v.StartsAfter != "" {
		fmt.Fprintf(stdout, "the chain starts after a record not given (prev %s): an older file rotated away?\n", v.StartsAfter)
	}
	return 0
}

func cmdAuditTail(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit tail [-n N] [--kind K] FILE", "Prints the last N records of an audit file, one line each.", stderr)
	n := fs.Int("n", 10, "records to print (0: all)")
	kind := fs.String("kind", "", "only records of this kind (session_start, login, command, transfer, ...)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || *n < 0 {
		fs.Usage()
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate audit tail: %v\n", err)
		return 1
	}
	defer f.Close()
	var last []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), audit.MaxLine+1)
	line := 0
	for sc.Scan() {
		line++
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			fmt.Fprintf(stderr, "ftpsgate audit tail: %s:%d: not a record: %v\n", fs.Arg(0), line, err)
			continue
		}
		if *kind != "" && r.Kind != *kind {
			continue
		}
		last = append(last, audit.Format(r))
		if *n > 0 && len(last) > *n {
			last = last[1:]
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "ftpsgate audit tail: %s:%d: %v\n", fs.Arg(0), line+1, err)
		return 1
	}
	for _, l := range last {
		fmt.Fprintln(stdout, l)
	}
	return 0
}
