// Package configs holds the example configurations of ftpsgate and embeds
// the default that `ftpsgate demo` runs.
package configs

import _ "embed"

// Demo is the configuration `ftpsgate demo` runs; the demo fills in
// backend.address with its embedded FTP server.
//
//go:embed demo.yaml
var Demo []byte
