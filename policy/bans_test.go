package policy

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// eventLog collects BanEvents.
type eventLog struct {
	mu  sync.Mutex
	evs []BanEvent
}

func (l *eventLog) add(ev BanEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) kinds() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ks []string
	for _, ev := range l.evs {
		ks = append(ks, ev.Kind+" "+ev.IP.String())
	}
	return strings.Join(ks, ", ")
}

func newTestDefender(t *testing.T, cfg BanConfig, clk *fakeClock, log *eventLog) *Defender {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var on func(BanEvent)
	if log != nil {
		on = log.add
	}
	d, err := newDefender(cfg, on, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func TestBanConfigValidate(t *testing.T) {
	if err := (BanConfig{}).Validate(); err != nil {
		t.Fatalf("zero BanConfig: %v", err)
	}
	dir := t.TempDir()
	ok := BanConfig{MaxFailures: 3, Window: time.Minute, Duration: time.Hour, MaxDuration: 48 * time.Hour,
		Weights:   map[string]int{KindProtocol: 0, KindTLSHandshake: 2},
		StateFile: filepath.Join(dir, "bans.json"), Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid BanConfig: %v", err)
	}
	for _, tc := range []struct {
		c    BanConfig
		want string
	}{
		{BanConfig{MaxFailures: -1}, "max_failures: must be between 1 and 1000"},
		{BanConfig{MaxFailures: 5000}, "max_failures: must be between 1 and 1000"},
		{BanConfig{Window: -time.Second}, "window: must not be negative"},
		{BanConfig{Duration: -time.Second}, "duration: must not be negative"},
		{BanConfig{MaxDuration: -time.Second}, "max_duration: must not be negative"},
		{BanConfig{Duration: 2 * time.Hour, MaxDuration: time.Hour}, "max_duration: 1h0m0s is shorter than duration 2h0m0s"},
		{BanConfig{Duration: 48 * time.Hour}, "max_duration: 24h0m0s is shorter"},
		{BanConfig{Weights: map[string]int{"login": 1}}, `weights: "login" is not an event kind`},
		{BanConfig{Weights: map[string]int{KindProtocol: -1}}, "weights.protocol: must not be negative"},
		{BanConfig{Weights: map[string]int{KindProtocol: 6}}, "weights.protocol: 6 is more than max_failures 5"},
		{BanConfig{Weights: map[string]int{KindPathEscape: 6}}, "weights.path_escape: 6 is more than max_failures 5"},
		{BanConfig{StateFile: filepath.Join(dir, "nodir", "bans.json")}, "state_file: "},
		{BanConfig{StateFile: dir}, "state_file: " + dir + " is not a regular file"},
		{BanConfig{Allow: []netip.Prefix{{}}}, "allow[0]: invalid network"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.c, err, tc.want)
		}
	}
}

func TestRecordBansAtMaxFailures(t *testing.T) {
	clk := newFakeClock()
	var log eventLog
	d := newTestDefender(t, BanConfig{}, clk, &log)
	bad := netip.MustParseAddr("127.0.0.3")
	good := netip.MustParseAddr("127.0.0.4")
	for i := range 4 {
		if d.Record(bad, KindLoginFailed) {
			t.Fatalf("banned after %d failures", i+1)
		}
		clk.Advance(time.Second)
	}
	d.Record(good, KindLoginFailed)
	if !d.Record(bad, KindLoginFailed) {
		t.Fatal("not banned after 5 failures")
	}
	until, ok := d.Banned(bad)
	if !ok || !until.Equal(clk.Now().Add(DefaultBanDuration)) {
		t.Fatalf("Banned = %v, %v", until, ok)
	}
	if _, ok := d.Banned(good); ok {
		t.Fatal("the neighbour is banned")
	}
	if _, ok := d.Banned(netip.MustParseAddr("::ffff:127.0.0.3")); !ok {
		t.Fatal("the mapped form is not banned")
	}
	if !d.Record(bad, KindLoginFailed) {
		t.Fatal("Record on a banned address must report it banned")
	}
	if got := log.kinds(); got != "ban 127.0.0.3" {
		t.Fatalf("events: %s", got)
	}
	if ev := log.evs[0]; ev.Duration != DefaultBanDuration || ev.Offences != 1 || !strings.Contains(ev.Reason, "5 failures within 5m0s (login_failed)") {
		t.Fatalf("event: %+v (%s)", ev, ev)
	}
	// The ban lifts itself, and says so once.
	clk.Advance(DefaultBanDuration)
	if _, ok := d.Banned(bad); ok {
		t.Fatal("still banned after the duration")
	}
	d.Banned(bad)
	if got := log.kinds(); got != "ban 127.0.0.3, unban 127.0.0.3" {
		t.Fatalf("events: %s", got)
	}
}

func TestRecordWindowAndWeights(t *testing.T) {
	clk := newFakeClock()
	d := newTestDefender(t, BanConfig{MaxFailures: 4, Window: time.Minute,
		Weights: map[string]int{KindProtocol: 0, KindTLSHandshake: 2}}, clk, nil)
	ip := netip.MustParseAddr("192.0.2.10")
	// Failures older than the window do not count.
	for range 10 {
		if d.Record(ip, KindLoginFailed) {
			t.Fatal("banned though failures were spread beyond the window")
		}
		clk.Advance(20 * time.Second)
	}
	d.Unban(ip) // forgets the failures
	for range 100 {
		if d.Record(ip, KindProtocol) || d.Record(ip, "unknown") {
			t.Fatal("a kind of weight 0 banned")
		}
	}
	if d.Record(ip, KindTLSHandshake) {
		t.Fatal("banned at weight 2")
	}
	if !d.Record(ip, KindTLSHandshake) {
		t.Fatal("not banned at weight 4")
	}
}

func TestEscalation(t *testing.T) {
	clk := newFakeClock()
	d := newTestDefender(t, BanConfig{MaxFailures: 1, Duration: time.Hour, MaxDuration: 5 * time.Hour}, clk, nil)
	ip := netip.MustParseAddr("192.0.2.20")
	for i, want := range []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 5 * time.Hour, 5 * time.Hour} {
		if !d.Record(ip, KindLoginFailed) {
			t.Fatalf("offence %d: not banned", i+1)
		}
		until, _ := d.Banned(ip)
		if got := until.Sub(clk.Now()); got != want {
			t.Fatalf("offence %d: banned for %s, want %s", i+1, got, want)
		}
		clk.Advance(want)
	}
	// Quiet for longer than MaxDuration: a first offender again.
	clk.Advance(5*time.Hour + time.Second)
	d.Banned(ip) // sweeps
	d.Record(ip, KindLoginFailed)
	if until, _ := d.Banned(ip); until.Sub(clk.Now()) != time.Hour {
		t.Fatalf("forgotten offender banned until %s", until)
	}
}

func TestManualBanAndUnban(t *testing.T) {
	clk := newFakeClock()
	var log eventLog
	d := newTestDefender(t, BanConfig{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, clk, &log)
	ip := netip.MustParseAddr("2001:db8::5")
	if _, err := d.Ban(netip.MustParseAddr("10.1.2.3"), time.Hour, "x"); !errors.Is(err, ErrAllowlisted) {
		t.Fatalf("allowlisted: %v", err)
	}
	if _, err := d.Ban(ip, -time.Second, "x"); !errors.Is(err, ErrBadDuration) {
		t.Fatalf("negative: %v", err)
	}
	if _, err := d.Ban(netip.Addr{}, time.Hour, "x"); !errors.Is(err, ErrInvalidAddr) {
		t.Fatalf("zero address: %v", err)
	}
	b, err := d.Ban(ip, 0, "scanner")
	if err != nil || b.Reason != "scanner" || b.Until.Sub(b.Since) != DefaultBanDuration {
		t.Fatalf("Ban = %+v, %v", b, err)
	}
	if _, err := d.Ban(netip.MustParseAddr("192.0.2.1"), 2*time.Hour, "y"); err != nil {
		t.Fatal(err)
	}
	list := d.List()
	if len(list) != 2 || list[0].IP.String() != "192.0.2.1" || list[1].IP != ip {
		t.Fatalf("List = %+v", list)
	}
	if !d.Unban(ip) || d.Unban(ip) {
		t.Fatal("Unban must report true once")
	}
	if _, ok := d.Banned(ip); ok {
		t.Fatal("still banned")
	}
	if got := log.kinds(); got != "ban 2001:db8::5, ban 192.0.2.1, unban 2001:db8::5" {
		t.Fatalf("events: %s", got)
	}
	var nilD *Defender
	if _, ok := nilD.Banned(ip); ok || nilD.Record(ip, KindLoginFailed) || nilD.Unban(ip) || nilD.List() != nil || nilD.Close() != nil {
		t.Fatal("nil Defender must ban nothing")
	}
	if _, err := nilD.Ban(ip, time.Hour, ""); !errors.Is(err, ErrBansOff) {
		t.Fatalf("nil Defender Ban: %v", err)
	}
}

func TestFailureTableBounded(t *testing.T) {
	clk := newFakeClock()
	d := newTestDefender(t, BanConfig{Window: time.Minute}, clk, nil)
	for i := range 100_000 {
		d.Record(nthIP(i), KindProtocol)
		if i%100 == 0 {
			clk.Advance(time.Second) // 100 addresses a second
		}
	}
	// Sweeps run every half window: at most about 1.5 windows of addresses.
	if got := d.Stats().Tracked; got > 150*100 {
		t.Fatalf("%d addresses tracked during the flood", got)
	}
	clk.Advance(2 * time.Minute)
	d.Banned(nthIP(0))
	if st := d.Stats(); st.Tracked != 0 {
		t.Fatalf("%+v after the window", st)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "bans.json")
	cfg := BanConfig{MaxFailures: 1, Duration: time.Hour, StateFile: path}
	a := netip.MustParseAddr("127.0.0.3")
	short := netip.MustParseAddr("127.0.0.5")
	offender := netip.MustParseAddr("127.0.0.6")

	d1, err := newDefender(cfg, nil, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	d1.Record(offender, KindLoginFailed)
	// The first change is written at once.
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("state file not written on ban: %v", err)
	}
	clk.Advance(time.Hour)
	d1.Banned(offender) // its ban ends; the offence count stays
	d1.Record(a, KindLoginFailed)
	if _, err := d1.Ban(short, time.Minute, "short"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil || st.Version != 1 {
		t.Fatalf("state file %s: %v", data, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if m, _ := filepath.Glob(path + "*"); len(m) != 1 {
		t.Fatalf("temporary files left: %v", m)
	}

	d2, err := newDefender(cfg, nil, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if _, ok := d2.Banned(a); !ok {
		t.Fatal("ban lost across restart")
	}
	if _, ok := d2.Banned(short); ok {
		t.Fatal("an ended ban came back")
	}
	// The offender's count survived: its next ban is doubled.
	d2.Record(offender, KindLoginFailed)
	if until, _ := d2.Banned(offender); until.Sub(clk.Now()) != 2*time.Hour {
		t.Fatalf("repeat offence banned until %s, want 2h from now", until)
	}
	if l := d2.List(); len(l) != 2 || l[0].Offences != 1 || l[1].Offences != 2 {
		t.Fatalf("List = %+v", l)
	}
	if d2.Unban(a); d2.Save() != nil {
		t.Fatal("save")
	}
	d3, err := newDefender(cfg, nil, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	if _, ok := d3.Banned(a); ok {
		t.Fatal("unban lost across restart")
	}
}

func TestSaveIsCoalesced(t *testing.T) {
	defer goleak.VerifyNone(t)
	path := filepath.Join(t.TempDir(), "bans.json")
	var log eventLog
	d, err := NewDefender(BanConfig{StateFile: path}, log.add)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := d.Ban(nthIP(i), time.Hour, "flood"); err != nil {
			t.Fatal(err)
		}
	}
	// The first ban was written at once; the rest wait for the timer.
	data, _ := os.ReadFile(path)
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil || len(st.Bans) != 1 {
		t.Fatalf("first write holds %d bans, %v", len(st.Bans), err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ = os.ReadFile(path)
		if json.Unmarshal(data, &st) == nil && len(st.Bans) == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deferred save did not happen: %d bans in the file", len(st.Bans))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSaveErrorIsReported(t *testing.T) {
	dir := t.TempDir()
	var log eventLog
	d, err := NewDefender(BanConfig{StateFile: filepath.Join(dir, "sub", "bans.json")}, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Ban(nthIP(1), time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if got := log.kinds(); !strings.Contains(got, EventSaveError) {
		t.Fatalf("events: %s", got)
	}
	if err := d.Close(); err == nil {
		t.Fatal("Close saved into a missing directory")
	}
	if _, ok := d.Banned(nthIP(1)); !ok {
		t.Fatal("ban lost on a failed save")
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"notjson": "hello",
		"version": `{"version": 2, "bans": []}`,
		"unknown": `{"version": 1, "bans": [], "extra": 1}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewDefender(BanConfig{StateFile: path}, nil); err == nil || !strings.Contains(err.Error(), "state_file") {
			t.Errorf("%s: %v", name, err)
		}
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDefender(BanConfig{StateFile: empty}, nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestLoadDropsAllowlisted(t *testing.T) {
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "bans.json")
	until := clk.Now().Add(time.Hour).Format(time.RFC3339Nano)
	content := `{"version":1,"bans":[{"ip":"10.0.0.1","until":"` + until + `","reason":"x"},{"ip":"192.0.2.1","until":"` + until + `","reason":"y"}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newTestDefender(t, BanConfig{StateFile: path, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, clk, nil)
	if l := d.List(); len(l) != 1 || l[0].IP.String() != "192.0.2.1" {
		t.Fatalf("List = %+v", l)
	}
}

// FuzzRestore feeds arbitrary state files to the loader: it must not panic,
// and what it accepts must save and load back to the same bans.
func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"version":1,"bans":[{"ip":"192.0.2.1","since":"2030-01-01T00:00:00Z","until":"2031-01-01T00:00:00Z","reason":"r","offences":2}],"offenders":[{"ip":"::1","offences":3,"until":"2030-01-02T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"bans":null}`))
	f.Add([]byte(`{"version":1,"bans":[{"ip":"::ffff:1.2.3.4","until":"2031-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		clk := newFakeClock()
		d1, _ := newDefender(BanConfig{}, nil, clk.Now)
		if _, err := d1.restore(data, clk.Now()); err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "bans.json")
		d1.cfg.StateFile = path
		d1.gen++
		if err := d1.Save(); err != nil {
			return // e.g. a year JSON cannot write
		}
		d2, err := newDefender(BanConfig{StateFile: path}, nil, clk.Now)
		if err != nil {
			t.Fatalf("saved state does not load: %v", err)
		}
		l1, l2 := d1.List(), d2.List()
		if len(l1) != len(l2) {
			t.Fatalf("%d bans saved, %d loaded", len(l1), len(l2))
		}
		for i := range l1 {
			if l1[i].IP != l2[i].IP || !l1[i].Until.Equal(l2[i].Until) || l1[i].Reason != l2[i].Reason || l1[i].Offences != l2[i].Offences {
				t.Fatalf("ban %d: saved %+v, loaded %+v", i, l1[i], l2[i])
			}
		}
	})
}

// TestBanEventCovers: a ban covers its address in every spelling a
// connection can report (IPv4-mapped, zoned), and nothing else.
func TestBanEventCovers(t *testing.T) {
	var got []BanEvent
	d, err := NewDefender(BanConfig{}, func(e BanEvent) { got = append(got, e) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Ban(netip.MustParseAddr("::ffff:192.0.2.1"), time.Hour, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Ban(netip.MustParseAddr("fe80::1%eth0"), time.Hour, "x"); err != nil {
		t.Fatal(err)
	}
	d.Unban(netip.MustParseAddr("192.0.2.1"))
	if len(got) != 3 {
		t.Fatalf("events %v", got)
	}
	v4, v6, unban := got[0], got[1], got[2]
	for _, tc := range []struct {
		e    BanEvent
		ip   string
		want bool
	}{
		{v4, "192.0.2.1", true},
		{v4, "::ffff:192.0.2.1", true},
		{v4, "192.0.2.2", false},
		{v6, "fe80::1", true},
		{v6, "fe80::1%eth1", true},
		{v6, "fe80::2", false},
		{unban, "192.0.2.1", false},
	} {
		if c := tc.e.Covers(netip.MustParseAddr(tc.ip)); c != tc.want {
			t.Errorf("%v covers %s: %v", tc.e, tc.ip, c)
		}
	}
	if v4.Covers(netip.Addr{}) {
		t.Error("covers the zero address")
	}
}
