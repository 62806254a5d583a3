package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes r as a readable summary and a violation table, one line per
// request involved.
func (r Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: %s (contract %s)\n", r.Verdict, r.Contract)
	fmt.Fprintf(&b, "%s: %d, requests: %d (2xx %d, clean errors %d, unknown %d",
		r.Names.WithDefaults().Entities, r.Customers, r.Requests, r.Successes, r.CleanErrors, r.Unknown)
	if r.Refused > 0 {
		fmt.Fprintf(&b, ", refused their key %d", r.Refused)
	}
	if r.HeadersUnrecorded > 0 {
		fmt.Fprintf(&b, ", headers not recorded %d", r.HeadersUnrecorded)
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "coverage: %s\n", r.Coverage.Describe(r.Names))
	for _, t := range r.FaultTails {
		fmt.Fprintf(&b, "fault tail: %s\n", t)
	}
	for _, rule := range r.AppliedRules() {
		fmt.Fprintf(&b, "  %-18s %d\n", rule, r.Counts[rule])
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if len(r.Violations) == 0 {
		return nil
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nRULE\t"+strings.ToUpper(r.Names.WithDefaults().Entity)+"\tREQUEST\tPHASE\tCALL\tRETURN\tSTATUS\tPOD\tDETAIL")
	for _, v := range r.Violations {
		for i := range max(len(v.Requests), len(v.Details), 1) {
			rule, cust := "", ""
			if i == 0 {
				rule, cust = string(v.Rule), v.Customer.String()
			}
			req := "\t\t\t\t\t"
			if i < len(v.Requests) {
				q := v.Requests[i]
				pod := q.Pod
				if pod == "" {
					pod = "-"
				}
				status := fmt.Sprint(q.Status)
				if q.Error != "" {
					status = "error"
				}
				req = fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", q.ID, q.Phase, ms(q.Call), ms(q.Return), status, pod)
			}
			detail := ""
			if i < len(v.Details) {
				detail = v.Details[i]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rule, cust, req, detail)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write violation table: %w", err)
	}
	return nil
}

// WriteJSON writes r as indented JSON.
func (r Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode check result: %w", err)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }
