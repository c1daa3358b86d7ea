package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

func TestUnknownEnv(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want string // "" no problem
	}{
		{[]string{"HOME=/root", "FTPSGATE_BACKEND_ADDRESS=10.0.0.5:21", "FTPSGATE_TLS_MIN_VERSION=1.3"}, ""},
		{[]string{"FTPSGATE_TLS_CLIENT_CERT_USER_CASE_INSENSITIVE=true", "FTPSGATE_LIMITS_MAX_PASSIVE_PER_IP=4"}, ""},
		// the test harnesses' switches
		{[]string{"FTPSGATE_INTEROP=1", "FTPSGATE_INTEROP_RESULTS=/tmp/r", "FTPSGATE_INTEROP_COMPAT=x", "FTPSGATE_TLSSCAN=1", "FTPSGATE_TLSSCAN_DIR=/tmp", "FTPSGATE_BENCH_HYBRID=1", "FTPSGATE_RSYSLOG_OUTAGE=5s"}, ""},
		{[]string{"FTPSGATE_BACKEND_ADRESS=10.0.0.5:21"}, "FTPSGATE_BACKEND_ADRESS: not a configuration key"},
		{[]string{"FTPSGATE_PASSIVE_PORTS=1-2", "FTPSGATE_LISTENERS=x"}, "FTPSGATE_LISTENERS: not a configuration key"},
		{[]string{"FTPSGATE_INTEROPX=1"}, "FTPSGATE_INTEROPX: not a configuration key"},
		{[]string{"FTPSGATE_=1"}, "FTPSGATE_: not a configuration key"},
	} {
		err := unknownEnv(tt.env)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)) {
			t.Errorf("%q: %v, want %q", tt.env, err, tt.want)
		}
	}
}

// validate fails on a misspelt override and names the variable, beside the
// other problems; the harness switches do not count.
func TestValidateUnknownEnv(t *testing.T) {
	t.Setenv("FTPSGATE_INTEROP", "1")
	t.Setenv("FTPSGATE_TIMEOUTS_IDEL", "3m")
	code, _, errOut := runCLI("validate", "--config", writeConfig(t, goodConfig))
	if code == 0 || !strings.Contains(errOut, "FTPSGATE_TIMEOUTS_IDEL: not a configuration key") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	if strings.Contains(errOut, "FTPSGATE_INTEROP") {
		t.Errorf("a test switch was reported: %q", errOut)
	}
}

// The semantic checks' problems are all reported, several on one key
// included; only keys whose value did not parse are skipped.
func TestProblemsAddNew(t *testing.T) {
	var p problems
	p.add("passive.ports", errors.New("does not parse"))
	p.addNew(errors.Join(confkey.Errorf("passive.ports", "again"), confkey.Errorf("tls.curves", "one"), confkey.Errorf("tls.curves", "two")))
	want := "passive.ports: does not parse\ntls.curves: one\ntls.curves: two"
	if got := p.err(); got == nil || got.Error() != want {
		t.Errorf("got %v, want %q", got, want)
	}
}
