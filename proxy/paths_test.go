package proxy

import (
	"errors"
	"testing"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/vfs"
)

func TestConfinePath(t *testing.T) {
	root, _ := vfs.NewRoot("/partners/acme")
	s := &session{vroot: confinement{pol: &vfs.Policy{Root: root}, cwd: "/in"}}
	cases := []struct {
		verb, arg string
		send      string // the backend's line
		virtual   string
		op        vfs.Op
		err       error
	}{
		{"CWD", "..", "CWD /partners/acme", "/", vfs.OpList, nil},
		{"CDUP", "", "CWD /partners/acme", "/", vfs.OpList, nil},
		{"RETR", "x.csv", "RETR /partners/acme/in/x.csv", "/in/x.csv", vfs.OpRead, nil},
		{"RNTO", "/etc/x", "RNTO /partners/acme/etc/x", "/etc/x", vfs.OpRename, nil},
		{"STOU", "", "STOU", "/in", vfs.OpWrite, nil},
		{"LIST", "-la", "LIST -la", "/in", vfs.OpList, nil},
		{"LIST", "-la sub", "LIST -la sub", "/in/sub", vfs.OpList, nil},
		{"NLST", "/out", "NLST /partners/acme/out", "/out", vfs.OpList, nil},
		{"NLST", "*.csv", "NLST *.csv", "/in/*.csv", vfs.OpList, nil},
		{"STAT", "", "STAT", "", 0, nil},
		{"STAT", "sub", "STAT /partners/acme/in/sub", "/in/sub", vfs.OpList, nil},
		{"STAT", "-la .", "STAT -la /partners/acme/in", "/in", vfs.OpList, nil},
		{"MLST", "", "MLST /partners/acme/in", "/in", vfs.OpList, nil},
		{"MDTM", "x", "MDTM /partners/acme/in/x", "/in/x", vfs.OpList, nil},
		{"MDTM", "20240101120000 x", "MDTM 20240101120000 /partners/acme/in/x", "/in/x", vfs.OpWrite, nil},
		{"MDTM", "20240101120000", "MDTM /partners/acme/in/20240101120000", "/in/20240101120000", vfs.OpList, nil},
		{"MFMT", "20240101120000 ../x", "MFMT 20240101120000 /partners/acme/x", "/x", vfs.OpWrite, nil},
		{"SITE", "CHMOD 644 x", "SITE CHMOD 644 /partners/acme/in/x", "/in/x", vfs.OpWrite, nil},
		{"SITE", "IDLE 60", "SITE IDLE 60", "", 0, nil},
		{"TYPE", "I", "TYPE I", "", 0, nil},
		{"RETR", "../../x", "", "", 0, vfs.ErrEscape},
		{"SITE", "CHMOD 777 ../../etc", "", "", 0, vfs.ErrEscape},
		{"MDTM", "20240101120000 ../../x", "", "", 0, vfs.ErrEscape},
		{"RETR", `..\x`, "", "", 0, vfs.ErrBadPath},
		{"SITE", "SYMLINK /etc/passwd x", "", "", 0, errNotConfinable},
		{"SMNT", "/", "", "", 0, errNotConfinable},
		{"MFMT", "20240101120000", "", "", 0, errNotConfinable},
	}
	for _, c := range cases {
		got, err := s.confinePath(ftp.Command{Verb: c.verb, Arg: c.arg})
		if !errors.Is(err, c.err) {
			t.Errorf("%s %s: err %v, want %v", c.verb, c.arg, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		line := got.send.Verb
		if got.send.Arg != "" {
			line += " " + got.send.Arg
		}
		v := ""
		if len(got.virtual) > 0 {
			v = got.virtual[0]
		}
		if line != c.send || v != c.virtual || (v != "" && got.op != c.op) {
			t.Errorf("%s %s: %q %q %v, want %q %q %v", c.verb, c.arg, line, v, got.op, c.send, c.virtual, c.op)
		}
	}
}

func TestHideDir(t *testing.T) {
	for in, want := range map[string]string{
		"OK. Current directory is /partners/acme/in": "OK. Current directory is /in",
		"OK. Current directory is /partners/acme":    "OK. Current directory is /",
		"OK. Current directory is /partners/acme.":   "OK. Current directory is /.",
		`"/partners/acme/a b" created`:               `"/a b" created`,
		"Opening for /partners/acme/x (5 bytes)":     "Opening for /x (5 bytes)",
		"/partners/acmecorp/x":                       "/partners/acmecorp/x",
		"/partners/acme.txt":                         "/partners/acme.txt",
		"/x/partners/acme/y":                         "/x/partners/acme/y",
		"from /partners/acme/a to /partners/acme/b":  "from /a to /b",
		"no path here":                               "no path here",
	} {
		if got := hideDir(in, "/partners/acme"); got != want {
			t.Errorf("hideDir(%q) = %q, want %q", in, got, want)
		}
	}
}
