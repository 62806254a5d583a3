package target

import (
	"strings"
	"testing"
)

// TestNames: a target without names reads in the neutral words; one with them in its own, an
// entity alone giving its plural with an s.
func TestNames(t *testing.T) {
	tg, err := Load(writeTarget(t, goodFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tg.Nouns(), (Names{Entity: "entity", Entities: "entities", Credential: "credential"}); got != want {
		t.Errorf("no names: %+v, want %+v", got, want)
	}
	named, err := Load(writeTarget(t, strings.Replace(goodFile, "name: shop\n", "name: shop\nnames: {entity: order, credential: receipt}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := named.Nouns(), (Names{Entity: "order", Entities: "orders", Credential: "receipt"}); got != want {
		t.Errorf("names: %+v, want %+v", got, want)
	}
	for _, c := range []struct {
		file string
		want Names
	}{
		{"../../targets/tokensvc/target.yaml", Names{Entity: "customer", Entities: "customers", Credential: "token"}},
		{"../../targets/orders/target.yaml", Names{Entity: "order", Entities: "orders", Credential: "order"}},
	} {
		tg, err := Load(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.Nouns(); got != c.want {
			t.Errorf("%s: names %+v, want %+v", c.file, got, c.want)
		}
	}
}

// TestLoadBadNames: a word the reports cannot print in a sentence, and a finding kind by its
// name before issue 21, are each one line naming what to write.
func TestLoadBadNames(t *testing.T) {
	for _, c := range []struct{ name, old, new, want string }{
		{"a word on two lines", "name: shop\n", "name: shop\nnames: {entity: \"or\\nder\"}\n",
			`target.yaml:4:17: names.entity: "or\nder": want a word or a short phrase on one line, without surrounding spaces`},
		{"a renamed finding kind", "[duplicate-rows]", "[two-tokens]",
			`target.yaml:54:25: modes[1].canary.findings[0]: "two-tokens" was renamed "two-credentials": write the new name`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(goodFile, c.old) {
				t.Fatalf("goodFile has no %q", c.old)
			}
			_, err := Load(writeTarget(t, strings.Replace(goodFile, c.old, c.new, 1)))
			if err == nil || err.Error() != c.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
}
