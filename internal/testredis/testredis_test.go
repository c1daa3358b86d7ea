package testredis

import "testing"

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if err := s.ping(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := s.ping(); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Restart()
	if err := s.ping(); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}
