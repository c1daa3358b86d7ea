package ftp

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseFeatures(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"vsftpd", vsftpdFEAT, []string{"AUTH TLS", "EPRT", "EPSV", "MDTM", "PASV", "PBSZ", "PROT", "REST STREAM", "SIZE", "TVFS", "UTF8"}},
		{"ProFTPD", proftpdFEAT, []string{
			"LANG en-US*", "MDTM", "MFMT", "TVFS", "UTF8", "MFF modify;UNIX.group;UNIX.mode;",
			"MLST modify*;perm*;size*;type*;unique*;UNIX.group*;UNIX.mode*;UNIX.owner*;",
			"SITE MKDIR", "SITE RMDIR", "SITE UTIME", "SITE SYMLINK", "REST STREAM", "SITE COPY", "SIZE",
			"AUTH TLS", "CCC", "PBSZ", "PROT",
		}},
		{"Pure-FTPd", pureftpdFEAT, []string{
			"EPRT", "IDLE", "MDTM", "SIZE", "MFMT", "REST STREAM",
			"MLST type*;size*;sizd*;modify*;UNIX.mode*;UNIX.uid*;UNIX.gid*;unique*;", "MLSD",
			"AUTH TLS", "PBSZ", "PROT", "UTF8", "TVFS", "ESTA", "PASV", "EPSV", "SPSV", "ESTP",
		}},
		{"empty lines and 211- prefixes", "211-Features:\r\n\r\n   \r\n211-MDTM\r\n\tSIZE \r\n211 End\r\n", []string{"MDTM", "SIZE"}},
		{"single line", "211 No features\r\n", nil},
		{"no middle lines", "211-Features:\r\n211 End\r\n", nil},
		{"not 211", "500-Features:\r\n MDTM\r\n500 End\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tt.input)).ReadReply()
			if err != nil {
				t.Fatal(err)
			}
			if got := ParseFeatures(r); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseFeatures = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFeatureReply(t *testing.T) {
	r := FeatureReply([]string{"AUTH TLS", " PBSZ ", "", "PROT", "EPSV", "MLST type*;size*;"})
	want := "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n EPSV\r\n MLST type*;size*;\r\n211 End\r\n"
	if got := string(r.AppendWire(nil)); got != want {
		t.Errorf("FeatureReply wire = %q, want %q", got, want)
	}
	if got := ParseFeatures(r); !reflect.DeepEqual(got, []string{"AUTH TLS", "PBSZ", "PROT", "EPSV", "MLST type*;size*;"}) {
		t.Errorf("round trip = %q", got)
	}
	if got := string(FeatureReply(nil).AppendWire(nil)); got != "211 No features\r\n" {
		t.Errorf("FeatureReply(nil) wire = %q", got)
	}
}

func TestFeatureName(t *testing.T) {
	tests := map[string]string{
		"REST STREAM":               "REST",
		"mlst type*;size*;":         "MLST",
		" MDTM ":                    "MDTM",
		"UTF8":                      "UTF8",
		"AUTH TLS":                  "AUTH",
		"LANG\ten-US*":              "LANG",
		"":                          "",
		"   ":                       "",
		"MFF modify;UNIX.group;":    "MFF",
		"  site  MKDIR":             "SITE",
		"Extensions supported:":     "EXTENSIONS",
		"PROT C;S;E;P":              "PROT",
		"mlst Type*;Size*;Modify*;": "MLST",
		"HOST":                      "HOST",
		"EPSV":                      "EPSV",
		"CLNT":                      "CLNT",
		"AUTH TLS;TLS-C;SSL;TLS-P;": "AUTH",
	}
	for in, want := range tests {
		if got := FeatureName(in); got != want {
			t.Errorf("FeatureName(%q) = %q, want %q", in, got, want)
		}
	}
}
