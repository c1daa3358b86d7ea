package proxy

import "testing"

// TestBackendHas: HASH counts only with SHA-256 among its algorithms (any
// case, selected or not); other features by name.
func TestBackendHas(t *testing.T) {
	tests := []struct {
		feats []string
		name  string
		want  bool
	}{
		{[]string{"HASH SHA-1*;SHA-256;SHA-512;MD5"}, "HASH", true},
		{[]string{"HASH sha-256*"}, "HASH", true},
		{[]string{"HASH SHA-1*;MD5;CRC32"}, "HASH", false},
		{[]string{"HASH"}, "HASH", false},
		{[]string{"SIZE", "XSHA256"}, "XSHA256", true},
		{[]string{"SIZE", "XSHA1"}, "XSHA256", false},
		{nil, "HASH", false},
	}
	for _, tt := range tests {
		if got := backendHas(tt.feats, tt.name); got != tt.want {
			t.Errorf("backendHas(%q, %s) = %v, want %v", tt.feats, tt.name, got, tt.want)
		}
	}
}

// TestHashCommandMaxSize: 0 is the default, negative turns it off.
func TestHashCommandMaxSize(t *testing.T) {
	for in, want := range map[int64]int64{0: DefaultHashCommandMaxSize, -1: 0, 5: 5} {
		if got := (Config{HashCommandMaxSize: in}).hashCommandMaxSize(); got != want {
			t.Errorf("HashCommandMaxSize %d: %d, want %d", in, got, want)
		}
	}
}
