package report

import (
	"fmt"
	"strings"
)

// The verdicts of a target are one grid, a row per spec (and judged part) and a column per run
// in start order: a nightly with the self-test judges some hundred parts, which as charts of
// their own would bury the figures that move. The grid is an HTML table, so it is its own
// table view.

type gridView struct {
	Runs []gridRunView
	Rows []gridRowView
}

type gridRunView struct{ Date, Time, Title, Href string }

type gridRowView struct {
	Title string
	Cells []gridCellView
	// Points counts the runs the row has a cell for.
	Points int
}

type gridCellView struct {
	Present                 bool
	Class, Mark, Text, Href string
}

// verdictMarks are the letters a cell shows for the checker's verdict.
var verdictMarks = map[string]string{"pass": "P", "fail": "F", "inconclusive": "I"}

func buildGrid(m TrendMetric, runs []TrendRun) *gridView {
	g := &gridView{}
	for _, r := range runs {
		g.Runs = append(g.Runs, gridRunView{Date: r.Start.Format("01-02"), Time: r.Start.Format("15:04"),
			Title: r.Start.Format(trendTimeFormat) + " · run " + runName(r), Href: r.Link})
	}
	for _, s := range m.Series {
		row := gridRowView{Title: s.Title(), Cells: make([]gridCellView, len(runs))}
		for _, l := range s.Lines {
			for _, p := range l.Points {
				c := &row.Cells[p.Run]
				if !c.Present {
					c.Present, c.Href, c.Mark = true, runs[p.Run].Link, "·"
					row.Points++
				}
				switch l.Name {
				case "spec":
					c.Class = "v-" + categoryClass(p.Label)
					c.Text = strings.TrimPrefix(c.Text+", spec "+p.Label, ", ")
				case "checker":
					c.Mark = verdictMarks[p.Label]
					if c.Mark == "" {
						c.Mark = "?"
					}
					c.Text = strings.TrimPrefix(c.Text+", checker "+p.Label, ", ")
				}
			}
		}
		for i := range row.Cells {
			if c := &row.Cells[i]; c.Present {
				c.Text = fmt.Sprintf("%s: %s", g.Runs[i].Title, c.Text)
			}
		}
		g.Rows = append(g.Rows, row)
	}
	return g
}
