package main

// fileConfig mirrors the YAML file. Values stay strings here so that a bad
// one is reported with its key; build turns them into typed values once.
type fileConfig struct {
	Listeners []struct {
		Name         string   `mapstructure:"name"`
		Address      string   `mapstructure:"address"`
		TLS          string   `mapstructure:"tls"`
		RequireTLS   *bool    `mapstructure:"require_tls"` // nil: true
		MinVersion   string   `mapstructure:"min_version"`
		CipherSuites []string `mapstructure:"cipher_suites"`
		Curves       []string `mapstructure:"curves"`
		ProxyProto   struct {
			Enabled bool     `mapstructure:"enabled"`
			Trusted []string `mapstructure:"trusted"`
		} `mapstructure:"proxy_protocol"`
	} `mapstructure:"listeners"`
	TLS struct {
		CertFile             string   `mapstructure:"cert_file"`
		KeyFile              string   `mapstructure:"key_file"`
		MinVersion           string   `mapstructure:"min_version"`
		CipherSuites         []string `mapstructure:"cipher_suites"`
		Curves               []string `mapstructure:"curves"`
		RequireProtectedData bool     `mapstructure:"require_protected_data"`
		DataSessionReuse     string   `mapstructure:"data_session_reuse"`
		TicketRotation       string   `mapstructure:"ticket_rotation"`
		ClientAuth           string   `mapstructure:"client_auth"`
		ClientCAFile         string   `mapstructure:"client_ca_file"`
		ClientCertUser       string   `mapstructure:"client_cert_user"`

		ClientCertUserCaseInsensitive bool `mapstructure:"client_cert_user_case_insensitive"` // weakens the binding
	} `mapstructure:"tls"`
	Backend  backendFile   `mapstructure:"backend"`  // the one backend, "default"
	Backends []backendFile `mapstructure:"backends"` // or several (backendsconfig.go)
	Pools    []poolFile    `mapstructure:"pools"`
	Routing  routingFile   `mapstructure:"routing"`
	Policy   struct {
		AllowAnonymous      bool     `mapstructure:"allow_anonymous"`
		AllowedSiteCommands []string `mapstructure:"allowed_site_commands"`
	} `mapstructure:"policy"`
	Passive struct {
		PublicHost   string `mapstructure:"public_host"`
		Ports        string `mapstructure:"ports"`
		Replicas     int    `mapstructure:"replicas"`      // a fleet: ports is split between them
		ReplicaIndex string `mapstructure:"replica_index"` // this replica's slice: N, or hostname (NAME-N)
	} `mapstructure:"passive"`
	Active struct {
		Enabled bool `mapstructure:"enabled"`
	} `mapstructure:"active"`
	Timeouts struct {
		Idle          string `mapstructure:"idle"`
		Login         string `mapstructure:"login"`
		Connect       string `mapstructure:"connect"`
		Handshake     string `mapstructure:"handshake"`
		DataAccept    string `mapstructure:"data_accept"`
		DataIdle      string `mapstructure:"data_idle"`
		ShutdownGrace string `mapstructure:"shutdown_grace"`
	} `mapstructure:"timeouts"`
	Transfers struct {
		Hash               string `mapstructure:"hash"`
		HashCommandMaxSize string `mapstructure:"hash_command_max_size"`
	} `mapstructure:"transfers"`
	Limits struct {
		ConnRate           float64 `mapstructure:"conn_rate"`
		ConnBurst          int     `mapstructure:"conn_burst"`
		MaxSessionsPerIP   int     `mapstructure:"max_sessions_per_ip"`
		MaxSessionsPerUser int     `mapstructure:"max_sessions_per_user"`
		MaxSessions        int     `mapstructure:"max_sessions"`
		MaxPreLoginPerIP   int     `mapstructure:"max_prelogin_per_ip"`
		MaxPassivePerIP    string  `mapstructure:"max_passive_per_ip"`
		CommandRate        float64 `mapstructure:"command_rate"`
		CommandBurst       int     `mapstructure:"command_burst"`
		SessionBandwidth   int64   `mapstructure:"session_bandwidth"`
		TotalBandwidth     int64   `mapstructure:"total_bandwidth"`
	} `mapstructure:"limits"`
	Bans struct {
		MaxFailures int            `mapstructure:"max_failures"`
		Window      string         `mapstructure:"window"`
		Duration    string         `mapstructure:"duration"`
		MaxDuration string         `mapstructure:"max_duration"`
		Weights     map[string]int `mapstructure:"weights"`
		StateFile   string         `mapstructure:"state_file"`
		Allow       []string       `mapstructure:"allow"`
		EndSessions bool           `mapstructure:"end_sessions"`
	} `mapstructure:"bans"`
	Auth    authFile    `mapstructure:"auth"`
	Access  accessFile  `mapstructure:"access"`
	Audit   auditFile   `mapstructure:"audit"`
	Inspect inspectFile `mapstructure:"inspect"`
	Agents  agentsFile  `mapstructure:"agents"`
	Fleet   fleetFile   `mapstructure:"fleet"`
	Admin   struct {
		Address   string `mapstructure:"address"`
		TokenFile string `mapstructure:"token_file"`
		Pprof     bool   `mapstructure:"pprof"`
	} `mapstructure:"admin"`
	Log logConfig `mapstructure:"log"`
}

type logConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// defaults are every scalar key with its default. Setting them is also what
// lets viper see FTPSGATE_<SECTION>_<KEY> environment variables.
var defaults = map[string]any{
	"tls.cert_file":                   "",
	"tls.key_file":                    "",
	"tls.min_version":                 "1.2",
	"tls.require_protected_data":      true,
	"tls.cipher_suites":               []string{},
	"tls.curves":                      []string{},
	"tls.data_session_reuse":          "user",
	"tls.ticket_rotation":             "1h",
	"tls.client_auth":                 "none",
	"tls.client_ca_file":              "",
	"tls.client_cert_user":            "",
	"backend.pin_sha256":              "",
	"backend.client_cert_file":        "",
	"backend.client_key_file":         "",
	"backend.proxy_protocol":          "off",
	"backend.data_ports":              "",
	"backend.via":                     "",
	"backend.health.interval":         "0s",
	"backend.health.timeout":          "",
	"backend.health.rise":             2,
	"backend.health.fall":             3,
	"backend.health.tls":              false,
	"backend.health.user":             "",
	"backend.health.password_file":    "",
	"backend.health.password_env":     "",
	"routing.default":                 "",
	"agents.listen":                   "",
	"agents.cert_file":                "",
	"agents.key_file":                 "",
	"agents.max_streams":              256,
	"agents.wait_for_agent":           "5s",
	"agents.keepalive":                "15s",
	"agents.handshake_timeout":        "10s",
	"policy.allow_anonymous":          false,
	"policy.allowed_site_commands":    []string{},
	"backend.address":                 "",
	"backend.tls":                     "none",
	"backend.ca_file":                 "",
	"backend.server_name":             "",
	"backend.insecure_skip_verify":    false,
	"passive.public_host":             "",
	"passive.ports":                   "50000-50019",
	"passive.replicas":                1,
	"passive.replica_index":           "",
	"active.enabled":                  false,
	"timeouts.idle":                   "5m",
	"timeouts.login":                  "1m",
	"timeouts.connect":                "10s",
	"timeouts.handshake":              "10s",
	"timeouts.data_accept":            "30s",
	"timeouts.data_idle":              "2m",
	"timeouts.shutdown_grace":         "30s",
	"transfers.hash":                  "auto",
	"transfers.hash_command_max_size": "1GiB",
	"limits.conn_rate":                0,
	"limits.conn_burst":               0,
	"limits.max_sessions_per_ip":      64,
	"limits.max_prelogin_per_ip":      16,
	"limits.max_sessions_per_user":    0,
	"limits.max_sessions":             0,
	"limits.max_passive_per_ip":       "auto",
	"limits.command_rate":             0,
	"limits.command_burst":            0,
	"limits.session_bandwidth":        0,
	"limits.total_bandwidth":          0,
	"bans.max_failures":               5,
	"bans.window":                     "5m",
	"bans.duration":                   "15m",
	"bans.max_duration":               "24h",
	"bans.state_file":                 "",
	"bans.allow":                      []string{},
	"bans.end_sessions":               true,
	"admin.address":                   "",
	"admin.token_file":                "",
	"admin.pprof":                     false,
	"log.level":                       "info",
	"log.format":                      "",

	"tls.client_cert_user_case_insensitive": false,
}
