package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/history"
)

func TestCreated(t *testing.T) {
	ta := tokenFor(t, rowA, nil)
	noFlag := op(alice, 1, 0, "pod-b", 1, 9, 200, fmt.Sprintf(`{"credential":%q,"widget_id":%q}`, ta, rowA.ID))
	for _, tc := range []struct {
		name       string
		ops        []history.Op
		registered bool
		skew       time.Duration
		counts     map[Rule]int
		lines      []string
	}{
		{name: "created, timed on another clock just after a 2xx, within the clocks' skew", skew: 5 * time.Millisecond, ops: []history.Op{
			ok(t, alice, 0, 0, "pod-a", 0, 10, ta), okCreated(t, alice, 1, 0, "pod-b", 13, 20, ta)}},
		{name: "created, timed on another clock after a 2xx, beyond the clocks' skew", skew: 2 * time.Millisecond, ops: []history.Op{
			ok(t, alice, 0, 0, "pod-a", 0, 10, ta), okCreated(t, alice, 1, 0, "pod-b", 13, 20, ta)},
			counts: map[Rule]int{RuleCreated: 1}, lines: []string{CreatedNotAfterRegister}},
		{name: "one created, the others not", ops: []history.Op{
			okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta), ok(t, alice, 1, 0, "pod-b", 1, 9, ta), ok(t, alice, 2, 0, "pod-a", 2, 8, ta)}},
		{name: "two created", ops: []history.Op{
			okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta), okCreated(t, alice, 1, 0, "pod-b", 1, 9, ta), ok(t, alice, 2, 0, "pod-a", 2, 8, ta)},
			counts: map[Rule]int{RuleCreated: 1}, lines: []string{CreatedAtMostOne, CreatedAtMostOne}},
		{name: "none created though every request returned", ops: []history.Op{
			ok(t, alice, 0, 0, "pod-a", 0, 10, ta), ok(t, alice, 1, 0, "pod-b", 1, 9, ta)},
			counts: map[Rule]int{RuleCreated: 1}, lines: []string{CreatedExactlyOne}},
		{name: "none created, but one request's outcome is unknown", ops: []history.Op{
			ok(t, alice, 0, 0, "pod-a", 0, 10, ta), ok(t, alice, 1, 0, "pod-b", 1, 9, ta), lost(alice, 2, 1, 5000, 0, "EOF")}},
		{name: "created by a retry after a 2xx had returned", ops: []history.Op{
			ok(t, alice, 0, 0, "pod-a", 0, 10, ta), ok(t, alice, 1, 0, "pod-b", 1, 9, ta), okCreated(t, alice, 1, 1, "pod-b", 1000, 1005, ta)},
			counts: map[Rule]int{RuleCreated: 1}, lines: []string{CreatedNotAfterRegister}},
		{name: "an existing customer, never created", registered: true, ops: []history.Op{
			ok(t, alice, 0, 0, "pod-a", 0, 10, ta), ok(t, alice, 1, 0, "pod-b", 1, 9, ta)}},
		{name: "an existing customer said created", registered: true, ops: []history.Op{
			okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta), ok(t, alice, 1, 0, "pod-b", 1, 9, ta)},
			counts: map[Rule]int{RuleCreated: 1}, lines: []string{CreatedNotWhenExisting}},
		{name: "a 2xx without a created flag", ops: []history.Op{okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta), noFlag},
			// The API promises the member too.
			counts: map[Rule]int{RuleCreated: 1, RuleAPIShape: 1}, lines: []string{CreatedFlagMissing}},
		{name: "the created answer names another customer", ops: []history.Op{
			op(alice, 0, 0, "pod-a", 0, 10, 200, fmt.Sprintf(`{"credential":%q,"widget_id":%q,"created":true}`, ta, rowB.ID)),
			ok(t, alice, 1, 0, "pod-b", 1, 9, ta)},
			counts: map[Rule]int{RuleCreated: 1, RuleTokenMatchesRow: 1}, lines: []string{CreatedIsTheRow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.Contract = contract(t, modeAtomic)
			p.Coverage.ClockSkewBound = tc.skew
			if tc.registered {
				p.Registered = []history.Customer{alice}
			}
			res, err := Check(tc.ops, []Row{rowA}, p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.counts == nil {
				tc.counts = map[Rule]int{}
			}
			var lines []string
			for _, v := range res.Violations {
				for _, f := range v.Findings {
					if f.Kind == KindCreatedBreach {
						lines = append(lines, f.Line)
					}
				}
			}
			if !maps.Equal(res.Counts, tc.counts) || !slices.Equal(lines, tc.lines) {
				var b strings.Builder
				_ = res.WriteText(&b)
				t.Errorf("counts %v, lines %v; want %v, %v\n%s", res.Counts, lines, tc.counts, tc.lines, b.String())
			}
		})
	}
}

// TestIssuedAtIsExact pins iat to the row's created_at in whole seconds, truncated as the
// service's time.Time.Unix does: one second either way is another token.
func TestIssuedAtIsExact(t *testing.T) {
	row := rowA
	row.CreatedAt = time.Date(2026, 5, 1, 12, 0, 0, 999_999_000, time.UTC) // rounding would say 12:00:01
	at := func(d time.Duration) string {
		return tokenFor(t, row, func(c *claims) { c.IssuedAt = jwt.NewNumericDate(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).Add(d)) })
	}
	for _, tc := range []struct {
		name  string
		token string
		want  Verdict
	}{
		{"the row's second", at(0), VerdictPass},
		{"one second later (rounded)", at(time.Second), VerdictFail},
		{"one second earlier", at(-time.Second), VerdictFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := []history.Op{okCreated(t, alice, 0, 0, "pod-a", 0, 10, tc.token), ok(t, alice, 1, 0, "pod-b", 1, 9, tc.token)}
			p := params()
			p.Contract = contract(t, modeAtomic)
			res, err := Check(ops, []Row{row}, p)
			if err != nil {
				t.Fatal(err)
			}
			wantCounts := map[Rule]int{}
			if tc.want == VerdictFail {
				wantCounts[RuleTokenMatchesRow], wantCounts[RuleFinalToken] = 1, 1
			}
			if res.Verdict != tc.want || !maps.Equal(res.Counts, wantCounts) {
				var b strings.Builder
				_ = res.WriteText(&b)
				t.Errorf("verdict %s %v, want %s %v\n%s", res.Verdict, res.Counts, tc.want, wantCounts, b.String())
			}
		})
	}
}
