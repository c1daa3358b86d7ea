package e2e

import (
	"strings"
	"testing"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// TestPasswordVariantsNotLogged: a password run together with PASS
// ("PASS<TAB>secret", "PASS:secret", "PASSsecret", "PASSabcd" which parses
// as a verb), or sent as the argument of a verb the gateway does not know,
// never reaches the gateway's log: neither as a command nor in a bad-line
// warning.
func TestPasswordVariantsNotLogged(t *testing.T) {
	const secret = "Wh1sper-9qz"
	g := startGateway(t)
	c := dialRaw(t, g.addr("implicit"), true)
	for _, line := range []string{"PASS\t" + secret, "PASS:" + secret, "PASS" + secret, "pass" + secret} {
		c.do(line, wire.StatusSyntaxError)
	}
	c.do("PASSwhsp", wire.StatusNotLoggedIn) // a verb, and a password
	c.do("XYZZY "+secret, wire.StatusNotLoggedIn)
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT P", wire.StatusCommandOK)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)
	c.send("XYZZY " + secret) // relayed: whatever the backend says
	c.read()
	c.send("PASSwhsp " + secret)
	c.read()
	c.do("NOOP", wire.StatusCommandOK)
	logs := g.logs.String()
	for _, s := range []string{secret, "whsp", "WHSP"} {
		if strings.Contains(logs, s) {
			t.Errorf("the gateway's log holds %q:\n%s", s, logs)
		}
	}
	if !strings.Contains(logs, `"XYZZY ****"`) || !strings.Contains(logs, `"PASS****"`) {
		t.Errorf("the gateway's log does not show the masked commands:\n%s", logs)
	}
}
