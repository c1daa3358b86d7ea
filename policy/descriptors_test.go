package policy

import "testing"

func TestSessionBudget(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		ports  int
		want   int
	}{
		{1024, 20, 235},   // (1024-84)/4
		{256, 20, 43},     // (256-84)/4: the hoarding test's limit
		{20000, 20, 4979}, // this machine's hard limit
		{1 << 20, 1000, 261878},
		{80, 20, 1}, // below the reserve: still one session
		{0, 0, 1},
		{1 << 62, 0, 1 << 30}, // RLIM_INFINITY-like: bounded
	} {
		if got := SessionBudget(tc.nofile, tc.ports); got != tc.want {
			t.Errorf("SessionBudget(%d, %d) = %d, want %d", tc.nofile, tc.ports, got, tc.want)
		}
	}
}
