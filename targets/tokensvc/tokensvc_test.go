package tokensvc

import (
	"reflect"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// TestAPI: the embedded file decoded without validation gives the API that the validated file
// gives.
func TestAPI(t *testing.T) {
	got, err := API()
	if err != nil {
		t.Fatal(err)
	}
	tg, err := target.Load(target.FileName)
	if err != nil {
		t.Fatal(err)
	}
	want, err := check.APIFromTarget(tg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("embedded: %+v\nvalidated: %+v", got, want)
	}
}

// TestName: the embedded file's name is the one target.Load reads from the repository's file.
func TestName(t *testing.T) {
	got, err := Name()
	if err != nil {
		t.Fatal(err)
	}
	tg, err := target.Load(target.FileName)
	if err != nil {
		t.Fatal(err)
	}
	if got != tg.Name {
		t.Errorf("embedded name %q, validated file's %q", got, tg.Name)
	}
}
