package check

import "github.com/stampede-e2e/stampede/e2e/target"

// renamedRules maps the rules renamed when the checker took the same words for every target
// (issue 21: a credential, not a token; the verifier's keys, not only a JWKS) from their old
// names to their new ones, so that judgements saved before still load and re-check alike.
var renamedRules = map[Rule]Rule{
	"valid-token":       RuleValidToken,
	"token-matches-row": RuleTokenMatchesRow,
	"one-token":         RuleOneToken,
	"final-token":       RuleFinalToken,
	"jwks":              RuleJWKS,
}

// UnmarshalText reads a rule's name as a saved file writes it: an old name (renamedRules) as
// the rule's current one, any other as written, so that a rule this build does not know still
// shows. encoding/json calls it for Counts' keys and Violation.Rule alike.
func (r *Rule) UnmarshalText(b []byte) error {
	*r = Rule(b)
	if to, ok := renamedRules[*r]; ok {
		*r = to
	}
	return nil
}

// UnmarshalText reads a kind of finding as a saved file writes it: an old name
// (target.RenamedFindingKinds, the one table of them) as the kind's current one.
func (k *Kind) UnmarshalText(b []byte) error {
	*k = Kind(b)
	if to, ok := target.RenamedFindingKinds[string(b)]; ok {
		*k = Kind(to)
	}
	return nil
}
