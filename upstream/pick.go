package upstream

import (
	"errors"
	"sync/atomic"
)

// ErrNoHealthy: no member of the target is up. The session gets 421
// (service not available); it does not fall through to another rule, so a
// session never lands on a backend its rules did not name.
var ErrNoHealthy = errors.New("no healthy backend")

// Member is one backend of a target as the picker sees it now.
type Member struct {
	Name     string
	Up       bool
	Sessions int64 // sessions on it now (least_sessions)
}

// Picker chooses a member of one target. Its zero value is ready; it is
// safe for concurrent use (the round-robin counter is atomic).
type Picker struct {
	next atomic.Uint64
}

// Pick returns the index in members of the member that takes a new
// session, or ErrNoHealthy when none is up. The turn runs over the
// members that are up, so that a member that is down gives its share to
// all the others, not to the one after it.
func (p *Picker) Pick(b Balance, members []Member) (int, error) {
	up := make([]int, 0, len(members))
	for i, m := range members {
		if m.Up {
			up = append(up, i)
		}
	}
	n := len(up)
	if n == 0 {
		return -1, ErrNoHealthy
	}
	start := int((p.next.Add(1) - 1) % uint64(n))
	if b == RoundRobin {
		return up[start], nil
	}
	best := -1
	for k := range n {
		i := up[(start+k)%n]
		if best < 0 || members[i].Sessions < members[best].Sessions {
			best = i
		}
	}
	return best, nil
}
