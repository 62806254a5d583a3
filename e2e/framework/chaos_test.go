package framework

import (
	"testing"

	"github.com/stampede-e2e/stampede/e2e/check"
)

func TestDetected(t *testing.T) {
	res := check.Result{
		Customers:          10,
		DuplicateCustomers: 3,
		Violations: []check.Violation{
			{Rule: check.RuleTokenMatchesRow, Details: []string{"0/1/0: empty subject; customer_id \"\", token sub \"\""}},
			{Rule: check.RuleTokenMatchesRow, Details: []string{"1/2/0: mid \"a\", request had \"b\""}},
			{Rule: check.RuleTokenMatchesRow, Details: []string{"2/0/0: empty subject", "2/3/0: empty subject"}},
			{Rule: check.RuleOneRow, Details: []string{"2 rows for one customer: empty subject"}},
		},
	}
	o := Outcome{Result: res}
	if d := Detected("legacy", o); d.Caught != 2 || d.Customers != 10 {
		t.Errorf("legacy: %+v, want 2 of 10 (one per customer, only empty subjects, only token-matches-row)", d)
	}
	if d := Detected("return-existing", o); d.Caught != 3 {
		t.Errorf("return-existing: %+v, want the 3 duplicated customers", d)
	}
	if d := DetectedAny(o); d.Caught != 1 {
		t.Errorf("DetectedAny: %+v, want 1: every violation here is of the one zero-valued customer", d)
	}
	if d := Detected("atomic", o); d.Caught != 0 {
		t.Errorf("atomic has no known bug to detect: %+v", d)
	}
}
