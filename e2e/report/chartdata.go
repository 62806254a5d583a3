package report

// The data of report.html's charts: one chartPart per judged part, in columns (one array per
// field of the requests) so that 100,000 requests stay a few megabytes of JSON. Times are whole
// microseconds on the part's clock. Tokens are never shipped: each distinct token is its
// fingerprint and the claims of its payload, decoded here without verifying anything.

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

// MaxTimelineRows bounds the customers a part's race timeline shows: those with violations
// first, then an even sample of the rest. The page adds a customer it was not showing when a
// violation or a point of the latency plot asks for it.
const MaxTimelineRows = 400

// The outcome of a request as the timeline colours it.
const (
	outOK         = iota // 2xx in no violation
	outBad2xx            // 2xx that a violation names
	outCleanError        // complete non-2xx in no violation
	outBadError          // complete non-2xx that a violation names
	outUnknown           // no complete response: transport error, timeout
	outBadUnknown        // no complete response, named by a violation
)

// bodyExcerpt bounds the part of a response body the page shows.
const bodyExcerpt = 200

type chartData struct {
	// Target names the target the run judged ("" for a run from before target files): the
	// close-up says whose answers it draws.
	Target string      `json:"target"`
	Parts  []chartPart `json:"parts"`
}

type chartPart struct {
	// End is the last time the part's charts show, µs: the last return or event end.
	End      int64    `json:"end"`
	Pods     []string `json:"pods"`
	Statuses []int    `json:"statuses"`
	// Strings are the part's texts (phases, messages, errors), the empty one first.
	Strings   []string        `json:"strings"`
	Customers chartCustomers  `json:"customers"`
	Rows      []int           `json:"rows"`
	RowsNote  string          `json:"rows_note"`
	Ops       chartOps        `json:"ops"`
	Tokens    chartTokens     `json:"tokens"`
	Events    []chartEvent    `json:"events"`
	Viol      []chartViolated `json:"violations"`
	// Names are the target's words, which the charts' labels read.
	Names check.Names `json:"names"`
	// Truth are the rows the checker read of the part's customers: the race close-up draws when
	// each was created. One entry per row, so O(customers).
	Truth chartTruth `json:"truth"`
}

// chartTruth are the database rows of the part's customers (rows.json), one array per field,
// in the order of their creation.
type chartTruth struct {
	// Customer indexes Customers.
	Customer []int    `json:"c"`
	ID       []string `json:"id"`
	// At is the row's creation less the part's base, µs: the database's clock, not the
	// client's, so it is as far off as the clocks are apart (the coverage line's skew bound).
	At []int64 `json:"at"`
}

// chartCustomers are the part's customers, in order of their first request; those that a
// violation names without any request come last.
type chartCustomers struct {
	Index []int    `json:"index"`
	MID   []string `json:"mid"`
	EXT   []string `json:"ext"`
	// Viol counts each customer's violations.
	Viol []int `json:"viol"`
}

// chartOps are the part's requests sorted by call time, one array per field. Columns that
// index a table use 0 for "none" where the table's first entry is empty (Strings), -1 where it
// is not; the columns named d... hold each value less the previous request's, which keeps
// them short.
type chartOps struct {
	// DCustomer: the customer, an index into Customers, delta-coded.
	DCustomer []int `json:"dc"`
	Seq       []int `json:"seq"`
	Attempt   []int `json:"att"`
	// Phase indexes Strings.
	Phase []int `json:"ph"`
	// DCall: the call time, µs, delta-coded.
	DCall []int64 `json:"dcall"`
	// Latency is return less call, µs, -1 for a request that never returned.
	Latency []int64 `json:"lat"`
	// Status indexes Statuses.
	Status []int `json:"st"`
	// Pod indexes Pods, -1 for none.
	Pod []int `json:"pod"`
	// Outcome is one of the out* constants.
	Outcome []int `json:"out"`
	// DToken: one more than the token's index into Tokens (0 for an answer without one),
	// delta-coded.
	DToken []int `json:"dtok"`
	// Created is the answer's created flag: 1 true, 0 false, -1 absent.
	Created []int `json:"cr"`
	// Msg indexes Strings: an error response's code and message, or what is odd about a 2xx
	// body.
	Msg []int `json:"msg"`
	// Err indexes Strings: the transport error.
	Err []int `json:"err"`
	// ServerStart is the handler's start less the call, and ServerDur its length, µs, as the
	// pod reported them; ServerDur is -1 when it reported none.
	ServerStart []int64 `json:"ss"`
	ServerDur   []int64 `json:"sd"`
}

// chartTokens are the distinct tokens of the part's answers: a fingerprint (the first 8 hex
// digits of the token's SHA-256) and the claims of the payload, unverified.
type chartTokens struct {
	FP []string `json:"fp"`
	// Alg, Iss and Bad index Strings; Bad says why the payload could not be read.
	Alg []int    `json:"alg"`
	Iss []int    `json:"iss"`
	Bad []int    `json:"bad"`
	Sub []string `json:"sub"`
	MID []string `json:"mid"`
	EXT []string `json:"ext"`
	Iat []string `json:"iat"`
}

type chartEvent struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
	Start  int64  `json:"start"`
	// End is -1 for an event that never ended.
	End int64 `json:"end"`
}

// chartViolated is one row of the violations table: its customer and the requests it names
// (indexes into the ops), in the table's order.
type chartViolated struct {
	Rule     string `json:"rule"`
	Customer int    `json:"c"`
	Ops      []int  `json:"ops"`
	// Say is the violation's findings in words, as the violations table shows them, for the
	// close-up's heading: at most maxSay, each cut at bodyExcerpt.
	Say []string `json:"say"`
}

// maxSay bounds the findings a violation carries into the chart data: the table below has them
// all.
const maxSay = 4

func us(d time.Duration) int64 { return int64(d / time.Microsecond) }

func excerptOf(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

type interner struct {
	list []string
	idx  map[string]int
}

func (in *interner) id(s string) int {
	if i, ok := in.idx[s]; ok {
		return i
	}
	if in.idx == nil {
		in.idx = map[string]int{}
	}
	in.idx[s] = len(in.list)
	in.list = append(in.list, s)
	return len(in.list) - 1
}

// decodeClaims reads a compact JWS's header and payload without verifying it.
func decodeClaims(tok string) (alg string, cl struct {
	Iss string      `json:"iss"`
	Sub string      `json:"sub"`
	MID string      `json:"mid"`
	EXT string      `json:"ext"`
	Iat json.Number `json:"iat"`
}, bad string) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", cl, fmt.Sprintf("not a JWS: %d segments", len(parts))
	}
	seg := func(s string) ([]byte, error) {
		return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if hb, err := seg(parts[0]); err == nil {
		var h struct {
			Alg string `json:"alg"`
		}
		if json.Unmarshal(hb, &h) == nil {
			alg = h.Alg
		}
	}
	pb, err := seg(parts[1])
	if err != nil {
		return alg, cl, "payload is not base64url"
	}
	if err := json.Unmarshal(pb, &cl); err != nil {
		return alg, cl, "payload: " + excerptOf(err.Error(), 120)
	}
	return alg, cl, ""
}

// buildChartPart returns the data of part's charts.
func buildChartPart(part PartView) chartPart {
	ops := slices.Clone(part.History)
	slices.SortStableFunc(ops, func(a, b history.Op) int { return cmp.Compare(a.Call, b.Call) })
	b := newPartBuilder(ops, part.Result.Violations)
	b.api = part.API
	b.cp.Ops = b.opColumns(ops, involvedRequests(part.Result.Violations))
	b.addEvents(part.Events)
	b.addViolations(part.Result.Violations)
	b.addTruth(part.Rows, part.Base)
	cp := b.finish()
	cp.Names = part.Result.Names.WithDefaults()
	return cp
}

// partBuilder fills one chartPart. The tables its columns index (customers, pods, statuses,
// strings, tokens) grow as the requests, then the events, then the violations are added, so
// that the order of each table is the order in which the part first names its entries.
type partBuilder struct {
	cp         chartPart
	api        *check.API // nil: read answers as readAnswer does
	strs, toks interner
	custPos    map[history.Customer]int // index into cp.Customers
	podPos     map[string]int           // index into cp.Pods
	statusPos  map[int]int              // index into cp.Statuses
	answers    map[answerKey]answer     // a customer's answers repeat: read each body once
	opIndex    map[string][]int         // a request's ID to its ops, indexes into cp.Ops
	end        int64                    // the last call, return or event time so far, µs
}

func newPartBuilder(ops []history.Op, violations []check.Violation) *partBuilder {
	b := &partBuilder{
		cp:      chartPart{Strings: []string{}, Rows: []int{}, Events: []chartEvent{}, Viol: []chartViolated{}},
		custPos: map[history.Customer]int{}, statusPos: map[int]int{}, answers: map[answerKey]answer{},
		opIndex: make(map[string][]int, len(ops)),
	}
	b.cp.Pods, b.podPos = podTable(ops, violations)
	b.strs.id("") // Strings[0]: none
	return b
}

// namedRequests returns the IDs of the requests v names, in its requests and its findings.
func namedRequests(v check.Violation) []string {
	var ids []string
	for _, q := range v.Requests {
		ids = append(ids, q.ID)
	}
	for _, f := range v.Findings {
		if f.Request != "" {
			ids = append(ids, f.Request)
		}
	}
	return ids
}

// involvedRequests returns the IDs of the requests any violation names.
func involvedRequests(violations []check.Violation) map[string]bool {
	involved := map[string]bool{}
	for _, v := range violations {
		for _, id := range namedRequests(v) {
			involved[id] = true
		}
	}
	return involved
}

// podTable returns the pods that served a request or that a violation names, sorted, and the
// index of each.
func podTable(ops []history.Op, violations []check.Violation) ([]string, map[string]int) {
	pos := map[string]int{}
	for _, op := range ops {
		if op.Pod != "" {
			pos[op.Pod] = 0
		}
	}
	for _, v := range violations {
		for _, p := range v.Pods {
			if p != "" {
				pos[p] = 0
			}
		}
	}
	pods := slices.AppendSeq([]string{}, maps.Keys(pos))
	slices.Sort(pods)
	for i, p := range pods {
		pos[p] = i
	}
	return pods, pos
}

// customer returns c's index into the part's customers, adding c when it is new.
func (b *partBuilder) customer(c history.Customer) int {
	if i, ok := b.custPos[c]; ok {
		return i
	}
	cs := &b.cp.Customers
	i := len(cs.Index)
	b.custPos[c] = i
	cs.Index = append(cs.Index, c.Index)
	cs.MID = append(cs.MID, c.Tenant)
	cs.EXT = append(cs.EXT, c.EntityKey)
	cs.Viol = append(cs.Viol, 0)
	return i
}

// status returns st's index into the part's statuses, adding st when it is new.
func (b *partBuilder) status(st int) int {
	i, ok := b.statusPos[st]
	if !ok {
		i = len(b.cp.Statuses)
		b.statusPos[st] = i
		b.cp.Statuses = append(b.cp.Statuses, st)
	}
	return i
}

// opColumns returns the columns of ops, which are sorted by call time; involved holds the IDs
// of the requests a violation names.
func (b *partBuilder) opColumns(ops []history.Op, involved map[string]bool) chartOps {
	n := len(ops)
	o := chartOps{
		DCustomer: make([]int, n), Seq: make([]int, n), Attempt: make([]int, n), Phase: make([]int, n),
		DCall: make([]int64, n), Latency: make([]int64, n), Status: make([]int, n), Pod: make([]int, n),
		Outcome: make([]int, n), DToken: make([]int, n), Created: make([]int, n), Msg: make([]int, n), Err: make([]int, n),
		ServerStart: make([]int64, n), ServerDur: make([]int64, n),
	}
	var prevCall int64
	prevCust, prevTok := 0, 0
	for i, op := range ops {
		id := op.ID()
		b.opIndex[id] = append(b.opIndex[id], i)
		c := b.customer(op.Customer)
		o.DCustomer[i], prevCust = c-prevCust, c
		o.Seq[i], o.Attempt[i] = op.Seq, op.Attempt
		o.Phase[i] = b.strs.id(string(op.Phase))
		call := us(op.Call)
		o.DCall[i], prevCall = call-prevCall, call
		b.end = max(b.end, call)
		o.Latency[i] = -1
		if op.Return > 0 {
			o.Latency[i] = max(us(op.Return)-call, 0)
			b.end = max(b.end, us(op.Return))
		}
		o.Status[i] = b.status(op.Status)
		o.Pod[i] = -1
		if op.Pod != "" {
			o.Pod[i] = b.podPos[op.Pod]
		}
		if op.Error != "" {
			o.Err[i] = b.strs.id(excerptOf(op.Error, bodyExcerpt))
		}
		o.ServerDur[i] = -1
		if op.HasServerInterval() {
			o.ServerStart[i] = us(op.ServerStart) - call
			o.ServerDur[i] = us(op.ServerEnd) - us(op.ServerStart)
		}
		o.Outcome[i] = outcomeOf(op, involved[id])
		a := b.answerOf(op)
		o.Created[i], o.Msg[i] = a.created, a.msg
		o.DToken[i], prevTok = a.token+1-prevTok, a.token+1
	}
	return o
}

// outcomeOf is the out* constant that colours op; bad when a violation names it.
func outcomeOf(op history.Op, bad bool) int {
	switch {
	case op.Unknown() && bad:
		return outBadUnknown
	case op.Unknown():
		return outUnknown
	case op.Succeeded() && bad:
		return outBad2xx
	case op.Succeeded():
		return outOK
	case bad:
		return outBadError
	}
	return outCleanError
}

// answerOf reads op's response body, each distinct body once; a request without a response
// has no answer.
func (b *partBuilder) answerOf(op history.Op) answer {
	if op.Status == 0 {
		return answer{token: -1, created: -1}
	}
	key := answerKey{op.Status >= 200 && op.Status < 300, op.Status, op.Body}
	a, ok := b.answers[key]
	if !ok {
		if b.api != nil {
			a = readAnswerByAPI(b.api, op.Status, key.success, op.Body, &b.strs, &b.toks, &b.cp.Tokens)
		} else {
			a = readAnswer(key.success, op.Body, &b.strs, &b.toks, &b.cp.Tokens)
		}
		b.answers[key] = a
	}
	return a
}

func (b *partBuilder) addEvents(events []history.Event) {
	for _, e := range events {
		ce := chartEvent{Kind: e.Kind, Name: e.Name, Target: e.Target, Detail: e.Detail, Start: us(e.Start), End: -1}
		b.end = max(b.end, ce.Start)
		if e.Ended() {
			ce.End = us(e.End)
			b.end = max(b.end, ce.End)
		}
		b.cp.Events = append(b.cp.Events, ce)
	}
}

// addViolations counts each customer's violations, adding the customers no request named, and
// lists the first MaxViolationRows violations with the ops each names.
func (b *partBuilder) addViolations(violations []check.Violation) {
	for i, v := range violations {
		c := b.customer(v.Customer)
		b.cp.Customers.Viol[c]++
		if i >= MaxViolationRows {
			continue
		}
		row := chartViolated{Rule: string(v.Rule), Customer: c, Ops: []int{}}
		seen := map[int]bool{}
		for _, id := range namedRequests(v) {
			for _, k := range b.opIndex[id] {
				if !seen[k] {
					seen[k] = true
					row.Ops = append(row.Ops, k)
				}
			}
		}
		slices.Sort(row.Ops)
		row.Say = sayOf(v)
		b.cp.Viol = append(b.cp.Viol, row)
	}
}

// sayOf is v's findings in words: kind, clause and detail, as the violations table writes them.
func sayOf(v check.Violation) []string {
	say := []string{}
	for _, f := range v.Findings {
		words := slices.DeleteFunc([]string{string(f.Kind), f.Line, f.Detail}, func(s string) bool { return s == "" })
		say = append(say, excerptOf(strings.Join(words, " "), bodyExcerpt))
		if len(say) == maxSay {
			return say
		}
	}
	if len(v.Findings) == 0 {
		for _, d := range v.Details[:min(len(v.Details), maxSay)] {
			say = append(say, excerptOf(d, bodyExcerpt))
		}
	}
	return say
}

// addTruth adds the rows of the part's customers, sorted by creation; a row no customer of the
// part accounts for (a stray row, which its violation names) is left out.
func (b *partBuilder) addTruth(rows []check.Row, base time.Time) {
	byKey := make(map[history.Key]int, len(b.custPos))
	for c, i := range b.custPos {
		byKey[c.Key()] = i
	}
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(x, y check.Row) int { return x.CreatedAt.Compare(y.CreatedAt) })
	t := chartTruth{Customer: []int{}, ID: []string{}, At: []int64{}}
	for _, r := range rows {
		c, ok := byKey[history.Key{Tenant: r.Tenant, EntityKey: r.Key}]
		if !ok || r.CreatedAt.IsZero() {
			continue
		}
		t.Customer = append(t.Customer, c)
		t.ID = append(t.ID, excerptOf(r.ID, 80))
		t.At = append(t.At, us(r.CreatedAt.Sub(base)))
	}
	b.cp.Truth = t
}

// finish returns the part with its tables in place: empty ones as [] rather than null, for
// the page.
func (b *partBuilder) finish() chartPart {
	cp := b.cp
	if cp.Tokens.FP == nil {
		cp.Tokens = chartTokens{FP: []string{}, Alg: []int{}, Iss: []int{}, Bad: []int{}, Sub: []string{}, MID: []string{}, EXT: []string{}, Iat: []string{}}
	}
	if cp.Customers.Index == nil {
		cp.Customers = chartCustomers{Index: []int{}, MID: []string{}, EXT: []string{}, Viol: []int{}}
	}
	if cp.Statuses == nil {
		cp.Statuses = []int{}
	}
	cp.End = b.end
	cp.Rows, cp.RowsNote = timelineRows(cp.Customers.Viol, MaxTimelineRows)
	cp.Strings = b.strs.list
	return cp
}

type answerKey struct {
	success bool
	// status tells a new entity where the API has no created flag (check.API.AnswerOf).
	status int
	body   string
}

// answer is what the page shows of a response body: its token, created flag and message, as
// indexes into the part's tables (-1 for none).
type answer struct{ token, created, msg int }

// answer's msg 0 is Strings[0], the empty string: no message.

// readAnswerByAPI reads a response body by the API's pointers: a success's credential (added
// to tokens when new; a JWT's claims decoded, another credential standing for the entity its
// answer names), created flag and anything odd about it, or an error response's code.
func readAnswerByAPI(api *check.API, status int, success bool, body string, strs, toks *interner, tokens *chartTokens) answer {
	a := answer{token: -1, created: -1}
	if !success {
		code, ok := api.ErrorCodeOf(body)
		if !ok || code == "" {
			a.msg = strs.id("body: " + cmp.Or(excerptOf(body, bodyExcerpt), "(empty)"))
			return a
		}
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal([]byte(body), &e) // a message is a courtesy: the code is the answer
		a.msg = strs.id(excerptOf(strings.TrimSuffix(code+": "+e.Message, ": "), bodyExcerpt))
		return a
	}
	ans := api.AnswerOf(status, body)
	if ans.Created != nil {
		a.created = 0
		if *ans.Created {
			a.created = 1
		}
	}
	idName := api.ID[strings.LastIndexByte(api.ID, '/')+1:]
	if api.Credential != "" && !ans.HasCredential {
		a.msg = strs.id("body: " + cmp.Or(excerptOf(body, bodyExcerpt), "(empty)"))
		return a
	}
	if ans.HasCredential {
		t := toks.id(ans.Credential)
		a.token = t
		if t == len(tokens.FP) {
			addCredential(api, ans, strs, tokens)
		}
		if ans.HasID && ans.ID != tokens.Sub[t] {
			a.msg = strs.id(idName + " " + excerptOf(ans.ID, 80))
		}
	}
	if !ans.HasID {
		a.msg = strs.id("no " + idName)
	}
	return a
}

// addCredential adds ans's credential to tokens: a JWT's claims, read without verifying, or for
// another credential the id of the entity it stands for as its subject.
func addCredential(api *check.API, ans check.Answer, strs *interner, tokens *chartTokens) {
	tokens.FP = append(tokens.FP, check.Fingerprint(ans.Credential))
	if api.Verifier != check.VerifierJWT {
		tokens.Alg = append(tokens.Alg, 0)
		tokens.Iss = append(tokens.Iss, 0)
		tokens.Bad = append(tokens.Bad, 0)
		tokens.Sub = append(tokens.Sub, ans.ID)
		tokens.MID = append(tokens.MID, "")
		tokens.EXT = append(tokens.EXT, "")
		tokens.Iat = append(tokens.Iat, "")
		return
	}
	tokens.addClaims(ans.Credential, strs)
}

// addClaims adds a JWT's claims, read without verifying, and why they could not be read.
func (tokens *chartTokens) addClaims(jwt string, strs *interner) {
	alg, cl, why := decodeClaims(jwt)
	tokens.Alg = append(tokens.Alg, strs.id(alg))
	tokens.Iss = append(tokens.Iss, strs.id(cl.Iss))
	tokens.Sub = append(tokens.Sub, cl.Sub)
	tokens.MID = append(tokens.MID, cl.MID)
	tokens.EXT = append(tokens.EXT, cl.EXT)
	tokens.Iat = append(tokens.Iat, cl.Iat.String())
	tokens.Bad = append(tokens.Bad, strs.id(why))
}

// readAnswer reads a response body: a 2xx's token (added to tokens when new), created flag
// and anything odd about it, or an error response's code and message.
func readAnswer(success bool, body string, strs, toks *interner, tokens *chartTokens) answer {
	a := answer{token: -1, created: -1}
	if !success {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal([]byte(body), &e) == nil && e.Error != "" {
			a.msg = strs.id(excerptOf(e.Error+": "+e.Message, bodyExcerpt))
		} else {
			a.msg = strs.id("body: " + cmp.Or(excerptOf(body, bodyExcerpt), "(empty)"))
		}
		return a
	}
	var resp struct {
		Token      *string `json:"token"`
		CustomerID *string `json:"customer_id"`
		Created    *bool   `json:"created"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Token == nil {
		a.msg = strs.id("body: " + cmp.Or(excerptOf(body, bodyExcerpt), "(empty)"))
		return a
	}
	t := toks.id(*resp.Token)
	a.token = t
	if t == len(tokens.FP) {
		tokens.FP = append(tokens.FP, check.Fingerprint(*resp.Token))
		tokens.addClaims(*resp.Token, strs)
	}
	if resp.Created != nil {
		a.created = 0
		if *resp.Created {
			a.created = 1
		}
	}
	switch {
	case resp.CustomerID == nil:
		a.msg = strs.id("no customer_id")
	case *resp.CustomerID != tokens.Sub[t]:
		a.msg = strs.id("customer_id " + excerptOf(*resp.CustomerID, 80))
	}
	return a
}

// timelineRows picks the customers a timeline shows, at most max of them: every customer with
// a violation first (in order of first request), then an even sample of the others. The note
// says what was picked.
func timelineRows(viol []int, limit int) ([]int, string) {
	var bad, good []int
	for c, n := range viol {
		if n > 0 {
			bad = append(bad, c)
		} else {
			good = append(good, c)
		}
	}
	total := len(viol)
	if total <= limit {
		return append(bad, good...), fmt.Sprintf("all %d customers, the %d with violations first", total, len(bad))
	}
	if len(bad) >= limit {
		return bad[:limit], fmt.Sprintf("%d of %d customers: the first %d of the %d with violations (a violation's row adds its customer)",
			limit, total, limit, len(bad))
	}
	room := limit - len(bad)
	rows := bad
	for k := range room {
		// Spread the sample evenly over the others, first and last included.
		rows = append(rows, good[k*len(good)/room])
	}
	return rows, fmt.Sprintf("%d of %d customers: the %d with violations, then an even sample of %d of the other %d",
		limit, total, len(bad), room, len(good))
}
