package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/auth/totp"
)

const usersHelp = `Edits the local users file (YAML, see README "Authentication"). Every change
takes a lock on FILE.lock and replaces the file atomically; a running gateway
reloads it when it changes and on SIGHUP. Passwords are read from the terminal
without echo, twice, or as one line from stdin with --password-stdin; they
must meet the password policy (the --min-length, --min-classes and --history
flags; use the values of your gateway's configuration).

  ftpsgate users add     --file FILE [--groups a,b] [--factors password,totp]
                         [--backend-user NAME] [--backend-password-file PATH |
                         --backend-password-env VAR] [--pins PIN,...]
                         [--no-password] [--password-stdin] NAME
  ftpsgate users passwd  --file FILE [--password-stdin] NAME
  ftpsgate users disable --file FILE NAME
  ftpsgate users enable  --file FILE NAME
  ftpsgate users list    --file FILE [--max-age 2160h]
  ftpsgate users totp    --file FILE [--issuer ftpsgate] [--profile] [--force] NAME
  ftpsgate users totp    --file FILE --remove NAME

add --no-password makes a profile-only entry (factors, pins, backend mapping)
for a user another provider authenticates, or for a certificate-only account.
totp enrols a TOTP secret, prints its otpauth:// URI and a QR code, and adds
totp to the user's factors; --profile enrols a user the file does not hold
yet (an LDAP or token user).`

// Set by tests: the hash parameters of new passwords and the clock.
var (
	usersHashParams = local.DefaultParams
	usersNow        = time.Now
)

type usersFlags struct {
	fs              *flag.FlagSet
	file            *string
	passwordStdin   *bool
	policy          local.Policy
	groups, factors *string
	pins            *string
	backendUser     *string
	backendPWFile   *string
	backendPWEnv    *string
	noPassword      *bool
	issuer          *string
	remove, profile *bool
	force           *bool
}

func newUsersFlags(verb string, stderr io.Writer) *usersFlags {
	fs := newFlagSet("users "+verb, usersHelp, stderr)
	f := &usersFlags{fs: fs, policy: local.DefaultPolicy()}
	f.file = fs.String("file", "", "the users file (required)")
	f.passwordStdin = fs.Bool("password-stdin", false, "add, passwd: read the password as one line from stdin")
	fs.IntVar(&f.policy.MinLength, "min-length", f.policy.MinLength, "add, passwd: shortest password accepted")
	fs.IntVar(&f.policy.MinClasses, "min-classes", f.policy.MinClasses, "add, passwd: character classes (lower, upper, digit, other) required")
	fs.IntVar(&f.policy.History, "history", f.policy.History, "passwd: previous passwords that may not be reused (and are kept)")
	fs.DurationVar(&f.policy.MaxAge, "max-age", 0, "list: password lifetime, to show expiry (0: passwords do not expire)")
	f.groups = fs.String("groups", "", "add: comma-separated groups")
	f.factors = fs.String("factors", "", "add: comma-separated factors: password, totp, client_cert, token (empty: the configured default)")
	f.pins = fs.String("pins", "", "add: comma-separated client certificate pins (sha256/BASE64 or 64 hex digits of the SPKI's SHA-256)")
	f.backendUser = fs.String("backend-user", "", "add: the backend account the user maps to (empty: the same name)")
	f.backendPWFile = fs.String("backend-password-file", "", "add: file holding the backend account's password")
	f.backendPWEnv = fs.String("backend-password-env", "", "add: environment variable holding the backend account's password")
	f.noPassword = fs.Bool("no-password", false, "add: a profile-only entry, without a password")
	f.issuer = fs.String("issuer", "ftpsgate", "totp: the issuer authenticator apps show")
	f.remove = fs.Bool("remove", false, "totp: remove the user's TOTP secret")
	f.profile = fs.Bool("profile", false, "totp: create a profile-only entry when the file does not hold the user")
	f.force = fs.Bool("force", false, "totp: replace a secret already enrolled")
	return f
}

// parse parses flags and positional arguments in any order.
func (f *usersFlags) parse(args []string) (pos []string, ok bool, code int) {
	for {
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, false, 0
			}
			return nil, false, 2
		}
		if f.fs.NArg() == 0 {
			return pos, true, 0
		}
		pos = append(pos, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
}

func cmdUsers(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(stderr, "Usage: ftpsgate users add|passwd|disable|enable|list|totp\n\n"+usersHelp)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	verb := args[0]
	switch verb {
	case "add", "passwd", "disable", "enable", "list", "totp":
	default:
		fmt.Fprintf(stderr, "ftpsgate users: unknown command %q\n\nUsage: ftpsgate users add|passwd|disable|enable|list|totp\n\n%s\n", verb, usersHelp)
		return 2
	}
	f := newUsersFlags(verb, stderr)
	pos, ok, code := f.parse(args[1:])
	if !ok {
		return code
	}
	if *f.file == "" {
		fmt.Fprintf(stderr, "ftpsgate users %s: --file FILE is required\n", verb)
		return 2
	}
	if err := f.policy.Validate(); err != nil {
		fmt.Fprintf(stderr, "ftpsgate users %s: %v\n", verb, err)
		return 2
	}
	wantArgs := 1
	if verb == "list" {
		wantArgs = 0
	}
	if len(pos) != wantArgs {
		if wantArgs == 0 {
			fmt.Fprintf(stderr, "ftpsgate users %s: unexpected arguments %v\n", verb, pos)
		} else {
			fmt.Fprintf(stderr, "ftpsgate users %s: give one user name\n", verb)
		}
		return 2
	}
	var err error
	switch verb {
	case "add":
		err = usersAdd(f, pos[0], stdin, stdout, stderr)
	case "passwd":
		err = usersPasswd(f, pos[0], stdin, stdout, stderr)
	case "disable", "enable":
		err = usersSetDisabled(*f.file, pos[0], verb == "disable", stdout)
	case "list":
		err = usersList(f, stdout)
	case "totp":
		err = usersTOTP(f, pos[0], stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate users %s: %v\n", verb, err)
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func usersAdd(f *usersFlags, name string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := local.CheckUserName(name); err != nil {
		return err
	}
	u := &local.User{
		Groups: splitList(*f.groups), Factors: splitList(*f.factors), Pins: splitList(*f.pins),
		BackendUser: *f.backendUser, BackendPasswordFile: *f.backendPWFile, BackendPasswordEnv: *f.backendPWEnv,
	}
	if !*f.noPassword {
		pw, err := readNewPassword(name, *f.passwordStdin, stdin, stderr)
		if err != nil {
			return err
		}
		if err := f.policy.Check(name, pw); err != nil {
			return err
		}
		if u.Password, err = local.HashPassword(pw, usersHashParams); err != nil {
			return err
		}
		u.PasswordChanged = usersNow().UTC().Truncate(time.Second)
	} else if *f.passwordStdin {
		return errors.New("--no-password and --password-stdin contradict each other")
	}
	err := local.Edit(*f.file, func(file *local.File) error {
		if _, exists := file.Users[name]; exists {
			return fmt.Errorf("user %q exists (change it with passwd, enable, disable or totp)", name)
		}
		file.Users[name] = u
		return nil
	})
	if err != nil {
		return err
	}
	if *f.noPassword {
		fmt.Fprintf(stdout, "added %s (a profile only: no password)\n", name)
	} else {
		fmt.Fprintf(stdout, "added %s\n", name)
	}
	return nil
}

func usersPasswd(f *usersFlags, name string, stdin io.Reader, stdout, stderr io.Writer) error {
	pw, err := readNewPassword(name, *f.passwordStdin, stdin, stderr)
	if err != nil {
		return err
	}
	if err := f.policy.Check(name, pw); err != nil {
		return err
	}
	hash, err := local.HashPassword(pw, usersHashParams)
	if err != nil {
		return err
	}
	err = local.Edit(*f.file, func(file *local.File) error {
		u := file.Users[name]
		if u == nil {
			return fmt.Errorf("no user %q in %s", name, *f.file)
		}
		if err := f.policy.CheckReuse(pw, u.Password, u.PasswordHistory); err != nil {
			return err
		}
		u.PasswordHistory = f.policy.NextHistory(u.Password, u.PasswordHistory)
		u.Password = hash
		u.PasswordChanged = usersNow().UTC().Truncate(time.Second)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "password of %s changed\n", name)
	return nil
}

func usersSetDisabled(path, name string, disabled bool, stdout io.Writer) error {
	err := local.Edit(path, func(file *local.File) error {
		u := file.Users[name]
		if u == nil {
			return fmt.Errorf("no user %q in %s", name, path)
		}
		u.Disabled = disabled
		return nil
	})
	if err != nil {
		return err
	}
	if disabled {
		fmt.Fprintf(stdout, "%s disabled\n", name)
		if u := profileOnly(path, name); u {
			fmt.Fprintf(stdout, "%s is a profile only: its logins through other providers stop while \"local\" comes first in auth.providers\n", name)
		}
	} else {
		fmt.Fprintf(stdout, "%s enabled\n", name)
	}
	return nil
}

func profileOnly(path, name string) bool {
	f, err := local.ReadFile(path)
	return err == nil && f.Users[name] != nil && f.Users[name].Password == ""
}

func usersTOTP(f *usersFlags, name string, stdout io.Writer) error {
	var key totp.Key
	var factors []string
	err := local.Edit(*f.file, func(file *local.File) error {
		u := file.Users[name]
		if *f.remove {
			if u == nil || u.TOTPSecret == "" {
				return fmt.Errorf("%s has no TOTP secret", name)
			}
			u.TOTPSecret = ""
			u.Factors = slices.DeleteFunc(u.Factors, func(s string) bool { return s == auth.FactorTOTP })
			factors = u.Factors
			return nil
		}
		if u == nil {
			if !*f.profile {
				return fmt.Errorf("no user %q in %s (give --profile to enrol a user another provider authenticates)", name, *f.file)
			}
			u = &local.User{}
			file.Users[name] = u
		}
		if u.TOTPSecret != "" && !*f.force {
			return fmt.Errorf("%s has a TOTP secret already (--force replaces it, --remove removes it)", name)
		}
		var err error
		if key, err = totp.NewKey(*f.issuer, name); err != nil {
			return err
		}
		u.TOTPSecret = key.Secret
		switch {
		case len(u.Factors) == 0:
			u.Factors = []string{auth.FactorPassword, auth.FactorTOTP}
		case !slices.Contains(u.Factors, auth.FactorTOTP):
			u.Factors = append(u.Factors, auth.FactorTOTP)
		}
		factors = u.Factors
		return nil
	})
	if err != nil {
		return err
	}
	if *f.remove {
		fmt.Fprintf(stdout, "TOTP removed from %s; factors now: %s\n", name, factorsText(factors))
		return nil
	}
	qr, err := totp.QR(key.URI, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "TOTP enrolled for %s; factors now: %s\n\nScan this code with an authenticator app, or enter the URI:\n\n%s\n%s\n", name, factorsText(factors), qr, key.URI)
	return nil
}

func factorsText(f []string) string {
	if len(f) == 0 {
		return "the configured default"
	}
	return strings.Join(f, ", ")
}

// usersList prints the users without hashes or secrets.
func usersList(f *usersFlags, stdout io.Writer) error {
	file, err := local.ReadFile(*f.file)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(file.Users))
	for n := range file.Users {
		names = append(names, n)
	}
	slices.Sort(names)
	now := usersNow()
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tGROUPS\tFACTORS\tDISABLED\tPASSWORD\tEXPIRES\tTOTP\tPINS\tBACKEND")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, n := range names {
		u := file.Users[n]
		pw, exp := "none (profile)", "-"
		if u.Password != "" {
			pw = "set"
			if !u.PasswordChanged.IsZero() {
				pw = fmt.Sprintf("%s (%dd ago)", u.PasswordChanged.UTC().Format("2006-01-02"), int(now.Sub(u.PasswordChanged).Hours()/24))
			}
			if e := f.policy.Expires(u.PasswordChanged); !e.IsZero() {
				exp = e.UTC().Format("2006-01-02")
				if !now.Before(e) {
					exp = "EXPIRED"
				}
			} else {
				exp = "never"
			}
		}
		tt := "no"
		if u.TOTPSecret != "" {
			tt = "enrolled"
		}
		backend := u.BackendUser
		if u.BackendPasswordFile != "" || u.BackendPasswordEnv != "" {
			backend = dash(backend) + " (password mapped)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\t%d\t%s\n", n, dash(strings.Join(u.Groups, ",")), dash(strings.Join(u.Factors, ",")),
			u.Disabled, pw, exp, tt, len(u.Pins), dash(backend))
	}
	return tw.Flush()
}

// readNewPassword reads a new password: one line from stdin with
// fromStdin, else twice from the terminal without echo.
func readNewPassword(name string, fromStdin bool, stdin io.Reader, stderr io.Writer) (string, error) {
	if fromStdin {
		line, err := bufio.NewReaderSize(io.LimitReader(stdin, 4097), 4097).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		if len(line) > 4096 {
			return "", errors.New("the password line on stdin is longer than 4096 bytes")
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if pw == "" {
			return "", errors.New("no password on stdin")
		}
		return pw, nil
	}
	tty, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(tty.Fd())) {
		return "", errors.New("stdin is not a terminal: give --password-stdin to read the password from it")
	}
	fmt.Fprintf(stderr, "New password for %s: ", name)
	a, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stderr, "Again: ")
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords differ")
	}
	if len(a) == 0 {
		return "", errors.New("empty password")
	}
	return string(a), nil
}
