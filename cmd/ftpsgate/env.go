package main

import (
	"errors"
	"sort"
	"strings"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

const envPrefix = "FTPSGATE_"

// testSwitches are the prefixes of FTPSGATE_ variables that are not
// configuration: the switches of the test harnesses (FTPSGATE_INTEROP=1,
// FTPSGATE_INTEROP_RESULTS, FTPSGATE_TLSSCAN_DIR, FTPSGATE_BENCH_HYBRID,
// FTPSGATE_RSYSLOG_OUTAGE...),
// set in the environment of the gateways those tests start. A variable is
// one if it is a prefix or starts with a prefix and "_". README lists them.
var testSwitches = []string{"FTPSGATE_INTEROP", "FTPSGATE_TLSSCAN", "FTPSGATE_BENCH", "FTPSGATE_RSYSLOG"}

// envName is the variable that overrides key: FTPSGATE_BACKEND_ADDRESS.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// unknownEnv reports, one problem each (the key is the variable's name),
// the FTPSGATE_ variables of environ that name no configuration key and are
// no test switch: a misspelt override would otherwise be ignored in silence.
func unknownEnv(environ []string) error {
	known := make(map[string]bool, len(defaults))
	for k := range defaults {
		known[envName(k)] = true
	}
	var bad []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || known[name] || isTestSwitch(name) {
			continue
		}
		bad = append(bad, name)
	}
	sort.Strings(bad)
	var errs []error
	for _, name := range bad {
		errs = append(errs, confkey.Errorf(name, "not a configuration key (FTPSGATE_<SECTION>_<KEY> for a key of the configuration table, e.g. FTPSGATE_BACKEND_ADDRESS; unset it)"))
	}
	return errors.Join(errs...)
}

func isTestSwitch(name string) bool {
	for _, p := range testSwitches {
		if name == p || strings.HasPrefix(name, p+"_") {
			return true
		}
	}
	return false
}
