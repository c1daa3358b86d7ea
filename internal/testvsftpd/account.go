package testvsftpd

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
)

// UserName is the local account the fleet tests' vsftpd authenticates
// through PAM (Options.User's default). Every test binary has an account
// of its own (test/interop ftpsgate-it, the bench its own): each gives its
// account a fresh password, and go test runs packages in parallel, so two
// packages sharing one account would break each other's logins.
const UserName = "ftpsgate-fl"

// accountHome is the accounts' home: vsftpd enters it at login before
// local_root, so it must exist; the user owns nothing there.
const accountHome = "/"

// Account is the local user and its password for this run.
type Account struct {
	Name, Password string
	UID, GID       int
}

var (
	accountsMu sync.Mutex
	accounts   = map[string]func() (Account, error){}
)

// EnsureAccount creates the local user name once per run (if missing; no
// home of its own, shell /bin/sh, which /etc/shells lists, so Debian's
// /etc/pam.d/vsftpd (pam_shells, /etc/ftpusers) lets it in) and gives it a
// fresh random password hashed with SHA-512: Debian's default yescrypt
// costs ~86 ms per login. comment is the account's GECOS field.
func EnsureAccount(name, comment string) (Account, error) {
	accountsMu.Lock()
	f, ok := accounts[name]
	if !ok {
		f = sync.OnceValues(func() (Account, error) { return newAccount(name, comment) })
		accounts[name] = f
	}
	accountsMu.Unlock()
	return f()
}

func newAccount(name, comment string) (Account, error) {
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "--no-create-home", "--home-dir", accountHome,
			"--shell", "/bin/sh", "--comment", comment, name).CombinedOutput()
		if err != nil {
			return Account{}, fmt.Errorf("useradd %s: %v: %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return Account{}, err
	}
	if u.HomeDir != accountHome {
		if out, err := exec.Command("usermod", "--home", accountHome, name).CombinedOutput(); err != nil {
			return Account{}, fmt.Errorf("usermod --home %s %s: %v: %s", accountHome, name, err, out)
		}
	}
	var rnd [12]byte
	if _, err := io.ReadFull(rand.Reader, rnd[:]); err != nil {
		return Account{}, err
	}
	a := Account{Name: name, Password: "Pw-" + hex.EncodeToString(rnd[:])}
	cmd := exec.Command("chpasswd", "-c", "SHA512")
	cmd.Stdin = strings.NewReader(a.Name + ":" + a.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Account{}, fmt.Errorf("chpasswd -c SHA512: %v: %s", err, out)
	}
	if a.UID, err = strconv.Atoi(u.Uid); err != nil {
		return Account{}, err
	}
	if a.GID, err = strconv.Atoi(u.Gid); err != nil {
		return Account{}, err
	}
	return a, nil
}
