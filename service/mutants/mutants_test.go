package mutants

import (
	"slices"
	"strings"
	"testing"
)

// checkRules are the e2e/check Rule values (the service does not import e2e).
var checkRules = []string{"one-row", "valid-credential", "matches-row", "one-credential", "clean-error", "contract", "auth", "created", "final-credential", "rows", "metrics",
	"api-shape", "verifier-keys", "tenants"} // issue 18

func TestCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range All {
		if m.Name == "" || seen[m.Name] {
			t.Errorf("empty or repeated name %q", m.Name)
		}
		seen[m.Name] = true
		if got, ok := Lookup(m.Name); !ok || got.Name != m.Name {
			t.Errorf("Lookup(%q) = %+v, %v", m.Name, got, ok)
		}
		if m.Doc == "" || strings.Contains(m.Doc, "\n") {
			t.Errorf("%s: Doc must be one line", m.Name)
		}
		switch m.Scenario {
		case ScenarioBurst, ScenarioExisting, ScenarioDBCrash, ScenarioForeignKeys, ScenarioScale:
		default:
			t.Errorf("%s: unknown scenario %q", m.Name, m.Scenario)
		}
		// A mutant is killed by one of its rules, or, an Inconclusive one, by never passing.
		if (len(m.Rules) == 0) != m.Inconclusive {
			t.Errorf("%s: rules %v, inconclusive %v: want rules, or none and an inconclusive verdict", m.Name, m.Rules, m.Inconclusive)
		}
		for _, r := range m.Rules {
			if !slices.Contains(checkRules, r) {
				t.Errorf("%s: %q is not an e2e/check rule", m.Name, r)
			}
		}
	}
	if _, ok := Lookup(""); ok {
		t.Error(`Lookup("") found a mutant`)
	}
	names := Names()
	if len(All) < 10 || len(names) != len(All) {
		t.Fatalf("%d mutants, %d names; issue 10 wants at least ten", len(All), len(names))
	}
	for i, m := range All {
		if names[i] != m.Name {
			t.Errorf("Names()[%d] = %q, want %q", i, names[i], m.Name)
		}
	}
}
