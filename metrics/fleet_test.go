package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
)

// The fleet store's events and gauges.
func TestFleetMetrics(t *testing.T) {
	m := New()
	down := true
	m.WatchFleet(FleetState{Down: func() bool { return down }, BanCache: func() int { return 4 }, Leases: func() int { return 7 }, LocalMode: true})
	for _, e := range []events.Event{
		events.StoreCall{Op: "admit", Duration: 2 * time.Millisecond},
		events.StoreCall{Op: "admit", Duration: 200 * time.Millisecond, Err: errors.New("i/o timeout")},
		events.StoreCall{Op: "weird"},
		events.StoreState{Up: false, Mode: "local"},
		events.StoreFallback{Op: "admit", Mode: "local"},
	} {
		m.Emit(e)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`ftpsgate_fleet_store_call_duration_seconds_count{op="admit"} 2`,
		`ftpsgate_fleet_store_call_duration_seconds_count{op="other"} 1`,
		`ftpsgate_fleet_store_errors_total{op="admit"} 1`,
		`ftpsgate_fleet_store_fallbacks_total{mode="local",op="admit"} 1`,
		`ftpsgate_fleet_store_state_changes_total{state="down"} 1`,
		`ftpsgate_fleet_store_state_changes_total{state="up"} 0`,
		`ftpsgate_fleet_store_up 0`,
		`ftpsgate_fleet_local_mode_active 1`,
		`ftpsgate_fleet_ban_cache_size 4`,
		`ftpsgate_fleet_leases_held 7`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
}
