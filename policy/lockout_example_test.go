package policy_test

import (
	"fmt"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
)

// A session asks Check before it checks a login, obeys the decision, and
// reports the outcome.
func ExampleLockout() {
	l := policy.NewLockout(policy.LockoutPolicy{Threshold: 2, LockAfter: 3, LockFor: time.Minute})
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	login := func(user string, ok bool) {
		dec := l.Check(user, now)
		if dec.Refuse {
			// 530, the same reply as a wrong password; the credentials are
			// not checked.
			fmt.Printf("%s: refused, locked until %s\n", user, dec.LockedUntil.Format("15:04:05"))
			return
		}
		now = now.Add(dec.Delay) // wait before answering
		if ok {
			l.Succeed(user)
			fmt.Printf("%s: 230 after %s\n", user, dec.Delay)
			return
		}
		locked := l.Fail(user, now)
		fmt.Printf("%s: 530 after %s (locked: %v)\n", user, dec.Delay, locked)
	}
	login("alice", false)
	login("alice", false)
	login("alice", false)
	login("alice", true)
	now = now.Add(time.Minute)
	login("alice", true)
	// Output:
	// alice: 530 after 0s (locked: false)
	// alice: 530 after 0s (locked: false)
	// alice: 530 after 1s (locked: true)
	// alice: refused, locked until 00:01:01
	// alice: 230 after 0s
}
