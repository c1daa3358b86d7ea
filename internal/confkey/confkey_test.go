package confkey

import (
	"errors"
	"io"
	"reflect"
	"testing"
)

func TestUnderAndList(t *testing.T) {
	inner := errors.Join(Errorf("ports", "bad"), New("weights.x", io.EOF), errors.New("no key"))
	err := Under("passive", errors.Join(inner, Errorf("[1].name", "dup")))
	var got []string
	for _, e := range List(err) {
		got = append(got, e.Key+"|"+e.Err.Error())
	}
	want := []string{"passive.ports|bad", "passive.weights.x|EOF", "passive|no key", "passive[1].name|dup"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !errors.Is(err, io.EOF) {
		t.Error("Under lost the wrapped error")
	}
	var ke *Error
	if !errors.As(err, &ke) || ke.Key != "passive.ports" {
		t.Errorf("errors.As: %v", ke)
	}
	if err.Error() != "passive.ports: bad\npassive.weights.x: EOF\npassive: no key\npassive[1].name: dup" {
		t.Errorf("text %q", err.Error())
	}
	if New("k", nil) != nil || Under("k", nil) != nil || List(nil) != nil {
		t.Error("nil must stay nil")
	}
}
