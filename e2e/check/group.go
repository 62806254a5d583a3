package check

import (
	"cmp"
	"slices"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// judgeBatch is how many customers a worker takes at a time: enough to make the
// shared counter cheap, few enough to balance the workers.
const judgeBatch = 64

// plannedCustomer is one customer to judge and where its ops and rows are.
type plannedCustomer struct {
	customer history.Customer
	slot     int32
}

// grouping holds the ops and rows of each customer as index ranges into flat
// slices, in the order of the history: two allocations instead of one slice per
// customer.
type grouping struct {
	customers        []plannedCustomer
	opIdx, opStart   []int32
	rowIdx, rowStart []int32
	allRows          []Row
	// slots maps each judged customer's key to its slot.
	slots map[history.Key]int32
}

// ops returns the indexes of the ops of the i-th customer.
func (g *grouping) ops(i int) []int32 {
	s := g.customers[i].slot
	return g.opIdx[g.opStart[s]:g.opStart[s+1]]
}

// rowsOf returns the rows of the i-th customer.
func (g *grouping) rowsOf(i int) []Row {
	s := g.customers[i].slot
	idx := g.rowIdx[g.rowStart[s]:g.rowStart[s+1]]
	out := make([]Row, len(idx))
	for k, r := range idx {
		out[k] = g.allRows[r]
	}
	return out
}

// groupByCustomer finds the customers (planned first, then those of the
// history), sorts them and groups ops and rows by customer. Rows of other
// customers (other runs) are not ours to judge.
func groupByCustomer(ops []history.Op, rows []Row, planned []history.Customer) *grouping {
	slots := make(map[history.Key]int32, len(planned)+len(ops)/4)
	var customers []plannedCustomer
	slotOf := func(c history.Customer) int32 {
		k := c.Key()
		if s, ok := slots[k]; ok {
			return s
		}
		s := int32(len(customers))
		slots[k] = s
		customers = append(customers, plannedCustomer{customer: c, slot: s})
		return s
	}
	for _, c := range planned {
		slotOf(c)
	}
	opSlot := make([]int32, len(ops))
	for i := range ops {
		opSlot[i] = slotOf(ops[i].Customer)
	}
	rowSlot := make([]int32, len(rows))
	for i, r := range rows {
		s, ok := slots[rowKey(&r)]
		if !ok {
			s = -1
		}
		rowSlot[i] = s
	}
	g := &grouping{customers: customers, allRows: rows, slots: slots}
	g.opIdx, g.opStart = countingSort(opSlot, len(customers))
	g.rowIdx, g.rowStart = countingSort(rowSlot, len(customers))
	slices.SortFunc(g.customers, func(a, b plannedCustomer) int {
		return cmp.Or(cmp.Compare(a.customer.Index, b.customer.Index),
			cmp.Compare(a.customer.Tenant, b.customer.Tenant), cmp.Compare(a.customer.EntityKey, b.customer.EntityKey))
	})
	return g
}

// countingSort returns the indexes of slot grouped by slot, in their order
// within each slot, and where each slot starts (n+1 entries). Negative slots are
// left out.
func countingSort(slot []int32, n int) (idx, start []int32) {
	start = make([]int32, n+1)
	for _, s := range slot {
		if s >= 0 {
			start[s+1]++
		}
	}
	for i := range n {
		start[i+1] += start[i]
	}
	idx = make([]int32, start[n])
	fill := slices.Clone(start[:n])
	for i, s := range slot {
		if s >= 0 {
			idx[fill[s]] = int32(i)
			fill[s]++
		}
	}
	return idx, start
}
