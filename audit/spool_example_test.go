package audit_test

import (
	"log"

	"github.com/ftpsgate/ftpsgate/audit"
)

// A syslog sink over TLS behind a spool, as the gateway wires it: the
// trail writes to the spool, the spool delivers to rsyslog.
func ExampleNewSpool() {
	sl, err := audit.NewSyslog(audit.SyslogConfig{
		Address: "siem.example.org:6514",
		CAFile:  "/etc/ftpsgate/siem-ca.pem",
		Format:  audit.SyslogCEF,
	})
	if err != nil {
		log.Fatal(err)
	}
	sp, err := audit.NewSpool(audit.SpoolConfig{Dir: "/var/spool/ftpsgate/syslog"}, sl, audit.SpoolHooks{
		Up: func(up bool, err error) { log.Printf("syslog sink up=%v: %v", up, err) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sp.Close()
	// trail, _ := audit.NewTrail(..., sp, ...)
}
