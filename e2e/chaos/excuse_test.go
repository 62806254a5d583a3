package chaos

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// TestFaultsDeclareWhatTheyMayCause: what each registered fault excuses, resolved for an
// injection that acted on pod-b (and, for node-loss, on the database's node or not).
func TestFaultsDeclareWhatTheyMayCause(t *testing.T) {
	dbAny := []history.Excuse{{Status: 503, Code: "unavailable"}, {Status: 503, Code: "overloaded"}}
	onB := []string{"pod-b"}
	for _, tc := range []struct {
		fault    Fault
		database bool
		want     []history.Excuse
	}{
		{fault: PodKill{}, want: []history.Excuse{{Status: 0, Pods: onB}}},
		{fault: RollingRestart{}, want: []history.Excuse{}},
		{fault: Scale{}, want: []history.Excuse{}},
		{fault: DBRestart{}, want: dbAny},
		{fault: DBCrash{}, want: dbAny},
		{fault: DBLatency{}, want: dbAny},
		{fault: DBCut{}, want: dbAny},
		{fault: NodeLoss{}, want: []history.Excuse{{Status: 0, Pods: onB}}},
		{fault: NodeLoss{}, database: true, want: append([]history.Excuse{{Status: 0, Pods: onB}}, dbAny...)},
		{fault: Partition{}, want: []history.Excuse{{Status: 503, Code: "unavailable", Pods: onB}, {Status: 503, Code: "overloaded", Pods: onB}}},
	} {
		got := Resolve(tc.fault, &Injection{Pods: onB, Database: tc.database})
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s (database %v) excuses %v, want %v", tc.fault.Name(), tc.database, got, tc.want)
		}
	}
	// An excuse for the target pods of an injection that names none is dropped, not widened.
	if got := Resolve(PodKill{}, &Injection{}); len(got) != 0 {
		t.Errorf("pod-kill without a pod excuses %v, want nothing", got)
	}
	for _, f := range Registry {
		if _, covered := map[string]bool{"pod-kill": true, "rolling-restart": true, "scale": true, "db-restart": true, "db-crash": true,
			"db-latency": true, "db-cut": true, "node-loss": true, "partition": true}[f.Name()]; !covered {
			t.Errorf("fault %s has no case here: say what it may excuse", f.Name())
		}
	}
}

// TestExcuseTableInReadme keeps e2e/chaos/README.md's table of excuses the one the
// declarations generate.
func TestExcuseTableInReadme(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := ExcuseTable()
	if !strings.Contains(string(readme), table) {
		t.Errorf("README.md lacks the table the declarations generate; put this in it:\n%s", table)
	}
	for _, want := range []string{"| `scale` | pods replaced, added or removed (no-restart); no error and no lost answer |", "| `pod-kill` | pods replaced, added or removed (no-restart); connection errors (unknown outcomes) (target pods) |", "| `db-restart` | 503 unavailable, 503 overloaded (any pod) |", "| `db-cut` | 503 unavailable, 503 overloaded (any pod) |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
