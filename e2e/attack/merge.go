package attack

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// Seqs maps each customer's request numbers in a plan (0 to Burst-1, how the pods number
// them) to the spec's (history.Seqs), which every traffic run of a spec shares.
type Seqs map[history.Key][]int

// ReserveSeqs takes burst request numbers per customer from the spec's numbering, as a host
// traffic run of the same burst would, so that a cluster run's request ids never repeat those
// of the spec's other runs.
func ReserveSeqs(s *history.Seqs, customers []history.Customer, burst int) Seqs {
	m := make(Seqs, len(customers))
	for _, c := range customers {
		for range burst {
			m[c.Key()] = append(m[c.Key()], s.Next(c))
		}
	}
	return m
}

// Rebase moves op from a time base to one delta earlier: every time it carries (call, return,
// the server's handler interval) grows by delta; the zero times that mean "none" stay zero.
func Rebase(op history.Op, delta time.Duration) history.Op {
	server := op.HasServerInterval()
	op.Call += delta
	if op.Return != 0 {
		op.Return += delta
	}
	if server {
		op.ServerStart += delta
		op.ServerEnd += delta
	}
	return op
}

// Correct moves op's client times onto the suite's clock: the attacker that sent it timed its
// call and return on a clock shift ahead of the suite's, so both move by -shift (Return only if
// it returned). The handler interval (ServerStart, ServerEnd) stays: it is the serving pod's
// clock, which the attacker's offset says nothing about.
func Correct(op history.Op, shift time.Duration) history.Op {
	op.Call -= shift
	if op.Return != 0 {
		op.Return -= shift
	}
	return op
}

// Merge joins the outputs of every pod of one plan into one history on the spec's time base:
// each op's times move from the plan's start to base (Rebase by start - base), its request
// number from the plan's to the spec's (seqs), and the result is sorted by call time as a
// host run's is. It fails unless there is exactly one output per shard, each from the plan's
// start, each op of a planned customer and request, and no request is told twice.
func Merge(outs []Output, p Plan, base time.Time, seqs Seqs) ([]history.Op, error) {
	errs := checkShards(outs, p)
	shards := p.Shard.Count
	planned := make(map[history.Key]history.Customer, len(p.Customers))
	for _, c := range p.Customers {
		planned[c.Key()] = c
	}
	delta := p.Start.Sub(base)
	var (
		ops []history.Op
		// Each pod's history was read on its own: its bodies are shared only within it.
		strs history.Interner
	)
	ids := map[string]bool{}
	for _, o := range outs {
		for _, op := range o.Ops {
			c, ok := planned[op.Customer.Key()]
			numbers := seqs[op.Customer.Key()]
			switch {
			case !ok || c != op.Customer:
				errs = append(errs, fmt.Errorf("shard %d sent %s for customer %s, not in the plan", o.Index, op.ID(), op.Customer))
				continue
			case op.Seq < 0 || op.Seq >= len(numbers) || op.Seq%shards != o.Index:
				errs = append(errs, fmt.Errorf("shard %d sent %s: request %d is not its to send", o.Index, op.ID(), op.Seq))
				continue
			}
			op = Rebase(op, delta)
			op.Seq = numbers[op.Seq]
			if ids[op.ID()] {
				errs = append(errs, fmt.Errorf("request %s told twice", op.ID()))
				continue
			}
			ids[op.ID()] = true
			strs.Op(&op)
			ops = append(ops, op)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("merge the attackers' histories: %w", err)
	}
	slices.SortStableFunc(ops, func(a, b history.Op) int {
		return cmp.Or(cmp.Compare(a.Call, b.Call), strings.Compare(a.ID(), b.ID()))
	})
	return ops, nil
}

// checkShards says what is wrong with the set of outs as p's: an output of a shard p does not
// have, two of one shard, one from another start, or a shard without one.
func checkShards(outs []Output, p Plan) []error {
	var errs []error
	shards := p.Shard.Count
	seen := make([]bool, shards)
	for _, o := range outs {
		switch {
		case o.Shards != shards || o.Index < 0 || o.Index >= shards:
			errs = append(errs, fmt.Errorf("output of shard %d of %d, the plan has %d shards", o.Index, o.Shards, shards))
			continue
		case seen[o.Index]:
			errs = append(errs, fmt.Errorf("two outputs of shard %d", o.Index))
		case o.Start != p.Start.UnixNano():
			errs = append(errs, fmt.Errorf("shard %d started from %d, the plan from %d", o.Index, o.Start, p.Start.UnixNano()))
		}
		seen[o.Index] = true
	}
	for i, ok := range seen {
		if !ok {
			errs = append(errs, fmt.Errorf("no output of shard %d", i))
		}
	}
	return errs
}
