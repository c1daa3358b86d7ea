package policy_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ftpsgate/ftpsgate/policy"
)

// The gate at accept, the user count at USER, a failed login at 530, and
// the release at session end.
func ExampleAdmission() {
	d, err := policy.NewDefender(policy.BanConfig{MaxFailures: 2}, func(ev policy.BanEvent) {
		fmt.Println("event:", ev.Kind, ev.IP, ev.Duration)
	})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	gate := policy.NewAdmission(policy.Limits{MaxSessionsPerIP: 4, MaxSessionsPerUser: 2}, d)

	client := netip.MustParseAddr("192.0.2.7")
	for range 2 {
		ticket, err := gate.Admit(client) // at accept: on error, 421 and close
		if err != nil {
			fmt.Println("refused:", err)
			return
		}
		_ = ticket.Login("alice")                     // at a successful login: on error, 421 and close
		if d.Record(client, policy.KindLoginFailed) { // at 530 after PASS
			fmt.Println("banned: 421 and close")
		}
		ticket.Release() // at session end
	}
	_, err = gate.Admit(client)
	fmt.Println(errors.Is(err, policy.ErrBanned))
	// Output:
	// event: ban 192.0.2.7 15m0s
	// banned: 421 and close
	// true
}
