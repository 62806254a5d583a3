package chaos

import (
	"fmt"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// Pods says from which pods a fault may cause an answer.
type Pods string

// The pods a declared Excuse names.
const (
	// AnyPod: every replica, such as when the database is down for all of them.
	AnyPod Pods = "any pod"
	// TargetPods: only the pods the fault acted on (Injection.Pods): the pod it killed, the
	// replica it cut off, the replicas on the node it paused.
	TargetPods Pods = "target pods"
)

// Excuse is one answer a fault type may cause, as it declares it: what the contract may accept
// from a request in flight during the fault or its tail, and from which pods. A fault excuses
// nothing it does not declare.
type Excuse struct {
	// Status is the HTTP status, 0 for a connection error (no answer arrived).
	Status int
	// Code is the error body's code; empty for a connection error.
	Code string
	From Pods
	// IfDatabase: only when the injection reached the database (Injection.Database), such as a
	// paused node that runs PostgreSQL.
	IfDatabase bool
	// Why says in a phrase why the fault causes it, for the table.
	Why string
}

// Excuser is implemented by faults that may cause some answers; a fault that does not
// implement it excuses none (a graceful rollout or scale-down: the service drains as
// service/README.md says).
type Excuser interface {
	Excuses() []Excuse
}

// PodChanger is implemented by faults that replace, add or remove token-service pods by design
// (history.Event.ChangesPods); a pod change during any other fault breaks the contract.
type PodChanger interface {
	ChangesPods() bool
}

// ChangesPods reports whether f declares that it replaces, adds or removes token-service pods.
func ChangesPods(f Fault) bool {
	c, ok := f.(PodChanger)
	return ok && c.ChangesPods()
}

// ExcusesOf returns what f declares it may cause.
func ExcusesOf(f Fault) []Excuse {
	if x, ok := f.(Excuser); ok {
		return x.Excuses()
	}
	return nil
}

// databaseDown is what a fault on the database, or on the path to it, may cause: every replica
// answers 503 unavailable once its statements fail, and sheds with 503 overloaded once
// requests waiting for the database fill its in-flight cap.
func databaseDown(from Pods, ifDatabase bool) []Excuse {
	return []Excuse{
		{Status: 503, Code: "unavailable", From: from, IfDatabase: ifDatabase, Why: "statements fail or time out"},
		{Status: 503, Code: "overloaded", From: from, IfDatabase: ifDatabase, Why: "requests waiting for the database fill the in-flight cap"},
	}
}

// connectionErrors is what a fault that stops a replica's process or node without a drain may
// cause to that replica's clients.
func connectionErrors(why string) Excuse { return Excuse{Status: 0, From: TargetPods, Why: why} }

// Resolve turns what f declares into the excuses of one injection of it, with the pods it acted
// on: an excuse for TargetPods when the injection names no pod is dropped, never widened to any
// pod.
func Resolve(f Fault, inj *Injection) []history.Excuse {
	out := []history.Excuse{}
	for _, x := range ExcusesOf(f) {
		if x.IfDatabase && !inj.Database {
			continue
		}
		e := history.Excuse{Status: x.Status, Code: x.Code}
		if x.From == TargetPods {
			if len(inj.Pods) == 0 {
				continue
			}
			e.Pods = append([]string(nil), inj.Pods...)
		}
		out = append(out, e)
	}
	return out
}

// ExcuseTable is the table fault -> what it may excuse, in Markdown, generated from the
// Registry's declarations (e2e/chaos/README.md carries it; TestExcuseTableInReadme keeps them
// in step): one row per fault, its answers grouped by the pods they come from.
func ExcuseTable() string {
	var b strings.Builder
	b.WriteString("| fault | may excuse (from which pods) | why |\n|---|---|---|\n")
	for _, f := range Registry {
		xs := ExcusesOf(f)
		var groups, whys []string
		if ChangesPods(f) {
			groups = append(groups, "pods replaced, added or removed (no-restart)")
			whys = append(whys, "it changes the Deployment's pods by design")
		}
		if len(xs) == 0 {
			groups = append(groups, "no error and no lost answer")
			whys = append(whys, "the service drains as service/README.md says")
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Name(), strings.Join(groups, "; "), strings.Join(whys, "; "))
			continue
		}
		for i := 0; i < len(xs); {
			var what []string
			j := i
			for ; j < len(xs) && xs[j].From == xs[i].From && xs[j].IfDatabase == xs[i].IfDatabase; j++ {
				w := fmt.Sprintf("%d %s", xs[j].Status, xs[j].Code)
				if xs[j].Status == 0 {
					w = "connection errors (unknown outcomes)"
				}
				what = append(what, w)
				whys = append(whys, xs[j].Why)
			}
			from := string(xs[i].From)
			if xs[i].IfDatabase {
				from += ", when PostgreSQL or toxiproxy runs there"
			}
			groups = append(groups, fmt.Sprintf("%s (%s)", strings.Join(what, ", "), from))
			i = j
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Name(), strings.Join(groups, "; "), strings.Join(whys, "; "))
	}
	return b.String()
}
