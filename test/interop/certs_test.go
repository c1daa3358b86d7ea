package interop

import (
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// newPKI writes a throw-away CA and a server certificate it signed for
// 127.0.0.1, ::1 and localhost into dir (see internal/testpki). Servers
// take ChainFile and KeyFile; clients verify against CAFile.
func newPKI(t *testing.T, dir string) *testpki.Files {
	t.Helper()
	f, err := testpki.WriteServer(dir, "ftpsgate interop test CA")
	if err != nil {
		t.Fatal(err)
	}
	return f
}
