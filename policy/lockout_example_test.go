package policy_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
)

// A session asks Begin before it checks a login (Begin waits for the
// attempt's turn and delay, or refuses it) and reports the outcome with
// Done.
func ExampleLockout() {
	l := policy.NewLockout(policy.LockoutPolicy{Threshold: 2, LockAfter: 3, Delay: 10 * time.Millisecond, LockFor: time.Minute})
	login := func(user string, ok bool) {
		a, err := l.Begin(context.Background(), user) // bounded by the login timeout
		if errors.Is(err, policy.ErrLockedOut) {
			// 530, the same reply as a wrong password; the credentials are
			// not checked.
			fmt.Printf("%s: refused\n", user)
			return
		}
		if ok {
			a.Done(policy.LockoutSucceeded)
			fmt.Printf("%s: 230 after %s\n", user, a.Delay)
			return
		}
		locked := a.Done(policy.LockoutFailed)
		fmt.Printf("%s: 530 after %s (locked: %v)\n", user, a.Delay, locked)
	}
	login("alice", false)
	login("alice", false)
	login("alice", false)
	login("alice", true)
	login("bob", true)
	// Output:
	// alice: 530 after 0s (locked: false)
	// alice: 530 after 0s (locked: false)
	// alice: 530 after 10ms (locked: true)
	// alice: refused
	// bob: 230 after 0s
}
