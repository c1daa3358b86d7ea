package icap_test

import (
	"log"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// The wiring of the inspect.icap section: typed values, the client, and
// the filter hook of the proxy.
func Example() {
	srv, err := icap.ParseServer("icap://127.0.0.1:1344/avscan")
	if err != nil {
		log.Fatal(err)
	}
	client, err := icap.New(icap.Config{
		Servers: []icap.Server{srv},
		Timeout: 30 * time.Second,
		OnError: icap.Block,
		Hooks: icap.Hooks{
			Done: func(r icap.Report) {
				log.Printf("scan %s %s: %s %s (%d bytes, %v)", r.Ref, r.Path, r.Outcome, r.Threat, r.Bytes, r.Latency)
			},
			ServerError: func(server string, err error) { log.Printf("ICAP server %s: %v", server, err) },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	cfg := proxy.Config{}
	cfg.Filters = func(m filter.Meta) []filter.Filter { return client.Filters(m) }
	_ = cfg
}
