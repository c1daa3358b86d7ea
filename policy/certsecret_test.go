package policy

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// secretVolume lays out a directory as the kubelet mounts a Secret (its
// AtomicWriter): the files live in a timestamped directory, ..data is a
// symlink to it and each key a symlink through ..data. A rotation writes a
// new timestamped directory, swaps ..data with a rename (atomic) and
// removes the old directory.
type secretVolume struct {
	t   *testing.T
	dir string
	gen int
}

func (v *secretVolume) write(cert *tls.Certificate) {
	v.t.Helper()
	v.gen++
	ts := filepath.Join(v.dir, "..2026_11_30_01_00_0"+string(rune('0'+v.gen))+".000000001")
	if err := os.Mkdir(ts, 0o755); err != nil {
		v.t.Fatal(err)
	}
	certPEM, keyPEM := encodePair(v.t, cert)
	if err := os.WriteFile(filepath.Join(ts, "tls.crt"), certPEM, 0o644); err != nil {
		v.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "tls.key"), keyPEM, 0o600); err != nil {
		v.t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	for _, key := range []string{"tls.crt", "tls.key"} {
		link := filepath.Join(v.dir, key)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", key), link); err != nil {
				v.t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			v.t.Fatal(err)
		}
	}
}

// TestReloaderSecretRotation: a certificate from a Kubernetes Secret
// volume is served anew after the kubelet swaps the ..data symlink (the
// paths the configuration names never change), on the watcher's next
// check, without a SIGHUP; and the removed old directory is no error.
func TestReloaderSecretRotation(t *testing.T) {
	v := &secretVolume{t: t, dir: t.TempDir()}
	first, _ := GenerateSelfSigned([]string{"first.example"})
	second, _ := GenerateSelfSigned([]string{"second.example"})
	v.write(first)
	c := TLSConfig{CertFile: filepath.Join(v.dir, "tls.crt"), KeyFile: filepath.Join(v.dir, "tls.key")}
	src, generated, err := NewCertSource(c, nil)
	if err != nil || generated {
		t.Fatalf("NewCertSource: %v (generated %v)", err, generated)
	}
	served := func(s interface {
		GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	}) string {
		t.Helper()
		c, err := s.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.DNSNames[len(c.Leaf.DNSNames)-1]
	}
	if got := served(src); got != "first.example" {
		t.Fatalf("serving %s", got)
	}
	// The watcher CertSource.Run runs, step by step: Init, a check per tick.
	r := src.reloader
	r.Init()
	if changed, err := r.Reload(false); changed || err != nil {
		t.Fatalf("unchanged Secret reloaded: %v %v", changed, err)
	}
	v.write(second)
	if changed, err := r.Reload(false); !changed || err != nil {
		t.Fatalf("swapped Secret not reloaded: changed %v, %v", changed, err)
	}
	if got := served(src); got != "second.example" {
		t.Fatalf("after the swap, serving %s", got)
	}
	if changed, err := r.Reload(false); changed || err != nil {
		t.Fatalf("after the swap, the next check: changed %v, %v", changed, err)
	}
}

// TestCertSourceRunSecretRotation: the same through CertSource.Run, the
// watcher the gateway starts (a check every 2 s).
func TestCertSourceRunSecretRotation(t *testing.T) {
	v := &secretVolume{t: t, dir: t.TempDir()}
	first, _ := GenerateSelfSigned([]string{"first.example"})
	second, _ := GenerateSelfSigned([]string{"second.example"})
	v.write(first)
	src, _, err := NewCertSource(TLSConfig{CertFile: filepath.Join(v.dir, "tls.crt"), KeyFile: filepath.Join(v.dir, "tls.key")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan CertEvent, 8)
	src.Subscribe(func(e CertEvent) { events <- e })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// Init reads the files at once; swap well after it (its digest of the
	// first pair is what makes the second a change).
	time.Sleep(500 * time.Millisecond)
	v.write(second)
	select {
	case e := <-events:
		if e.Kind != "reloaded" {
			t.Fatalf("event %s: %v", e.Kind, e.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the swapped Secret was not reloaded within 10 s")
	}
	if c, _ := src.GetCertificate(&tls.ClientHelloInfo{}); c.Leaf.DNSNames[len(c.Leaf.DNSNames)-1] != "second.example" {
		t.Fatalf("after the swap, serving %v", c.Leaf.DNSNames)
	}
}
