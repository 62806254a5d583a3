package report

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/targets/tokensvc"
)

// tokensvcAPI is the token service's API, the default for runs saved before judge.json kept one.
func tokensvcAPI(t *testing.T) check.API {
	t.Helper()
	api, err := tokensvc.API()
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// judgedRun is a small live-like run, judged by the real checker: two customers raced on two
// pods, one of them answered with a token of nobody (a violation), under a fault window.
func judgedRun(t *testing.T) Run {
	t.Helper()
	return judgedRunOf(t, false)
}

// judgedRunOf is judgedRun, or with beforeAuth the same run as the suite judged it before the
// service had API keys: tokens without aud and exp, params without audience and token TTL.
func judgedRunOf(t *testing.T, beforeAuth bool) Run {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 29, 2, 0, 0, 123456789, time.UTC)
	sign := func(sub, mid, ext string) string {
		claims := jwt.MapClaims{"iss": "stampede-tokensvc", "aud": "stampede-merchant-api",
			"sub": sub, "mid": mid, "ext": ext, "iat": created.Unix(), "exp": created.Unix() + 86400}
		if beforeAuth {
			delete(claims, "aud")
			delete(claims, "exp")
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var (
		ops       []history.Op
		rows      []check.Row
		customers []history.Customer
	)
	for i := range 2 {
		c := history.Customer{Index: i, Tenant: "m-1", EntityKey: fmt.Sprintf("c-%d", i)}
		row := check.Row{ID: fmt.Sprintf("row-%d", i), Tenant: c.Tenant, Key: c.EntityKey, CreatedAt: created}
		customers, rows = append(customers, c), append(rows, row)
		for seq, pod := range []string{"pod-a", "pod-b"} {
			sub := row.ID
			if i == 1 && seq == 1 {
				sub = "" // the seed's bug
			}
			body, _ := json.Marshal(map[string]any{"token": sign(sub, c.Tenant, c.EntityKey), "customer_id": sub, "created": seq == 0})
			at := time.Duration(i*100) * time.Millisecond
			ops = append(ops, history.Op{Customer: c, Seq: seq, Phase: history.PhaseBurst, Call: at, Return: at + 5*time.Millisecond,
				Status: 200, Body: string(body), Pod: pod, ServerStart: at + time.Millisecond, ServerEnd: at + 4*time.Millisecond})
			if !beforeAuth {
				ops[len(ops)-1].KeyTenant = c.Tenant
			}
		}
	}
	if !beforeAuth {
		// A request with another tenant's key, refused as it should be.
		ops = append(ops, history.Op{Customer: customers[0], Seq: 2, Phase: history.PhaseBurst, KeyTenant: "m-2",
			Call: time.Millisecond, Return: 3 * time.Millisecond, Status: 403, Body: `{"error":"forbidden"}`, Pod: "pod-a"})
	}
	api := tokensvcAPI(t)
	contract, err := api.Contract("atomic")
	if err != nil {
		t.Fatal(err)
	}
	p := check.Params{API: api, PublicKey: pub, Issuer: "stampede-tokensvc", Audience: "stampede-merchant-api", TokenTTL: 24 * time.Hour,
		Base: created, Contract: contract, Customers: customers,
		Faults:   []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 50 * time.Millisecond, End: 60 * time.Millisecond}},
		Coverage: check.CoverageParams{MinCovered: 1, MinFraction: 0.5},
		JWKS:     []check.JWKSFetch{{Via: "service", Pod: "pod-a", Status: 200, Body: check.JWKSOf(map[string]ed25519.PublicKey{"k1": pub})}}}
	if beforeAuth {
		// Only a judge.json saved before then makes such params: through one, as Load does.
		saved := p.Save()
		saved.Version, saved.Audience, saved.TokenTTL, saved.JWKS = 0, "", 0, nil // a file from before versions, API keys and the JWKS
		if p, err = saved.Params(tokensvcAPI(t)); err != nil {
			t.Fatal(err)
		}
		p.Base = created
	}
	res, err := check.Check(ops, rows, p)
	if err != nil {
		t.Fatal(err)
	}
	// The one violation meant: customer 1's token of nobody.
	if res.Verdict != check.VerdictFail || res.Counts[check.RuleTokenMatchesRow] != 1 || res.Counts[check.RuleAuth] != 0 {
		t.Fatalf("fixture judged %s %v, want a failing run by token-matches-row alone", res.Verdict, res.Counts)
	}
	return Run{Repro: "make e2e SEED=1", Base: created, History: ops, Result: res, Params: p, Rows: rows}
}

// TestRecheckDir: a saved run judged again from its files alone gives the live result exactly;
// a changed artifact changes it, so the comparison can fail.
func TestRecheckDir(t *testing.T) {
	run := judgedRun(t)
	dir := filepath.Join(t.TempDir(), "spec", "part")
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	again, err := RecheckDir(dir, tokensvcAPI(t))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Same || again.Fresh.Verdict != run.Result.Verdict {
		t.Fatalf("re-judged %s %v, live %s %v", again.Fresh.Verdict, again.Fresh.Counts, run.Result.Verdict, run.Result.Counts)
	}
	loaded, err := Load(dir, tokensvcAPI(t))
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Base.Equal(run.Base) || loaded.Repro != run.Repro || len(loaded.Params.Faults) != 1 || !loaded.Params.PublicKey.Equal(run.Params.PublicKey) {
		t.Errorf("loaded base %v repro %q faults %v", loaded.Base, loaded.Repro, loaded.Params.Faults)
	}
	dirs, err := JudgedDirs(filepath.Dir(filepath.Dir(dir)))
	if err != nil || len(dirs) != 1 || dirs[0] != dir {
		t.Errorf("JudgedDirs = %v, %v; want [%s]", dirs, err, dir)
	}
	// Through a link to the run, as _artifacts/latest is one: the same run, named under the link.
	link := filepath.Join(t.TempDir(), "latest")
	if err := os.Symlink(filepath.Dir(filepath.Dir(dir)), link); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(link, filepath.Base(filepath.Dir(dir)), filepath.Base(dir))
	if dirs, err := JudgedDirs(link); err != nil || len(dirs) != 1 || dirs[0] != want {
		t.Errorf("JudgedDirs(link) = %v, %v; want [%s]", dirs, err, want)
	}

	// A row lost from the saved rows: the same history now judges differently.
	rows, _ := json.Marshal(run.Rows[:1])
	if err := os.WriteFile(filepath.Join(dir, RowsFile), rows, 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err = RecheckDir(dir, tokensvcAPI(t)); err != nil || again.Same {
		t.Errorf("a changed rows.json re-judged the same (%v)", err)
	}
	// A judge.json that cannot judge is an error, not a verdict.
	if err := os.WriteFile(filepath.Join(dir, JudgeFile), []byte(`{"params":{"issuer":"x"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RecheckDir(dir, tokensvcAPI(t)); err == nil {
		t.Error("a judge.json without a key re-judged")
	}
}

// TestRecheckBeforeAuth: the artifacts of a run judged before the service had API keys (no
// audience or token TTL in judge.json, no key_merchant in the history, tokens without aud and
// exp) re-judge as they were judged then.
func TestRecheckBeforeAuth(t *testing.T) {
	run := judgedRunOf(t, true)
	dir := t.TempDir()
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	// Write writes the current format, which requires an audience: a file of then had no version.
	editJudgeParams(t, dir, func(p map[string]any) {
		p["contract"] = map[string]any{"strategy": p["strategy"]}
		for _, f := range []string{"version", "audience", "token_ttl_ns", "strategy", "earlier", "metrics_scrapes", "api"} {
			delete(p, f)
		}
	})
	for _, f := range []string{JudgeFile, HistoryFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{`"audience"`, `"token_ttl_ns"`, `"key_merchant"`} {
			if strings.Contains(string(b), field) {
				t.Fatalf("%s of a run from before API keys holds %s", f, field)
			}
		}
	}
	again, err := RecheckDir(dir, tokensvcAPI(t))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Same || again.Fresh.Counts[check.RuleValidToken] != 0 || again.Fresh.Counts[check.RuleAuth] != 0 {
		t.Errorf("re-judged %s %v, live %s %v", again.Fresh.Verdict, again.Fresh.Counts, run.Result.Verdict, run.Result.Counts)
	}
}

func TestWriteRefusesAnotherTimeBase(t *testing.T) {
	run := judgedRun(t)
	run.Base = run.Base.Add(time.Hour)
	if err := Write(t.TempDir(), run); err == nil || !strings.Contains(err.Error(), "time base") {
		t.Errorf("a run judged on another time base than its own was written: %v", err)
	}
}

// editJudgeParams rewrites the params of dir's judge.json with edit.
func editJudgeParams(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, JudgeFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var jf map[string]any
	if err := json.Unmarshal(b, &jf); err != nil {
		t.Fatal(err)
	}
	edit(jf["params"].(map[string]any))
	if b, err = json.Marshal(jf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRecheckFormatVersion: judge.json carries its format version; a current file lacking a
// field its version requires, or of an unknown version, is refused in one line naming why, and
// the contract is the strategy's among the API's contracts (the token service's for a file saved
// before the API kept them), whatever a version 1 file's own contract says.
func TestRecheckFormatVersion(t *testing.T) {
	run := judgedRun(t)
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		// refused is a part of the one-line error; "" means the run re-judges the same.
		refused string
	}{
		{name: "current format", edit: func(map[string]any) {}},
		// Saved before judge.json kept the API: judged by the default API, the token service's.
		{name: "no api", edit: func(p map[string]any) { delete(p, "api") }},
		{name: "no audience", edit: func(p map[string]any) { delete(p, "audience") }, refused: "format version 2 lacks audience"},
		{name: "no ttl, no scrapes", edit: func(p map[string]any) { delete(p, "token_ttl_ns"); delete(p, "metrics_scrapes") },
			refused: "lacks token_ttl_ns, metrics_scrapes"},
		{name: "empty audience", edit: func(p map[string]any) { p["audience"] = "" }, refused: "want both"},
		{name: "newer version", edit: func(p map[string]any) { p["version"] = 3 }, refused: "newer than this checker's"},
		{name: "unknown strategy", edit: func(p map[string]any) { p["strategy"] = "optimistic" }, refused: `no contract for mode "optimistic"`},
		// Saved before the API kept its modes' contracts: the token service's, by the strategy.
		{name: "api without contracts", edit: func(p map[string]any) { delete(p["api"].(map[string]any), "contracts") }},
		// Saved with the API's contracts, the mode's is the one that judges: none is refused.
		{name: "api without the strategy's contract", edit: func(p map[string]any) {
			api := p["api"].(map[string]any)
			api["contracts"] = slices.DeleteFunc(api["contracts"].([]any), func(c any) bool { return c.(map[string]any)["strategy"] == p["strategy"] })
		}, refused: `no contract for mode "atomic" of tokensvc (its modes: fail-fast, legacy, return-existing)`},
		{
			// Version 1's contract is not read but for its strategy: atomic's loosened to allow
			// a 409 still judges the run by atomic's.
			name: "version 1 with a loosened contract",
			edit: func(p map[string]any) {
				p["contract"] = map[string]any{"strategy": p["strategy"], "lines": []any{map[string]any{"name": "anything", "status": 409}}}
				for _, f := range []string{"version", "strategy", "earlier", "metrics_scrapes"} {
					delete(p, f)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, run); err != nil {
				t.Fatal(err)
			}
			editJudgeParams(t, dir, tc.edit)
			again, err := RecheckDir(dir, tokensvcAPI(t))
			if tc.refused == "" {
				if err != nil || !again.Same {
					t.Fatalf("re-judged %+v, %v; want the live result", again.Fresh, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.refused) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v; want one line saying %q", err, tc.refused)
			}
		})
	}
}

// TestRecheckFiguresAddedSince: a run saved by an older checker lacks the figures added since
// (fault tails here); re-judged, it is the same when those are all that differ. A current file
// lacking one differs: there an absent member is a zero.
func TestRecheckFiguresAddedSince(t *testing.T) {
	run := judgedRun(t)
	for _, tc := range []struct {
		name string
		old  bool
		same bool
	}{
		{name: "current format", same: false},
		{name: "saved before versions", old: true, same: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Write(dir, run); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, ViolationsJSONFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var res map[string]any
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			if _, ok := res["fault_tails"]; !ok {
				t.Fatalf("fixture's result has no fault_tails to leave out: %s", b)
			}
			delete(res, "fault_tails")
			if b, err = json.Marshal(res); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.old {
				editJudgeParams(t, dir, func(p map[string]any) {
					p["contract"] = map[string]any{"strategy": p["strategy"]}
					for _, f := range []string{"version", "strategy", "earlier", "metrics_scrapes"} {
						delete(p, f)
					}
				})
			}
			rc, err := RecheckDir(dir, tokensvcAPI(t))
			if err != nil {
				t.Fatal(err)
			}
			if rc.Same != tc.same {
				t.Errorf("same %v, want %v", rc.Same, tc.same)
			}
		})
	}
}

// TestRecheckLegacyRows: rows.json as the token service's columns by name, as the checker wrote
// it before it read rows with the target's truth query, loads into the neutral rows and
// re-judges the same; a row whose email differs from what its request sent still breaks rows.
func TestRecheckLegacyRows(t *testing.T) {
	run := judgedRun(t)
	dir := t.TempDir()
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	var legacy []map[string]any
	for _, r := range run.Rows {
		legacy = append(legacy, map[string]any{"id": r.ID, "merchant_id": r.Tenant, "external_id": r.Key, "email": nil, "name": nil, "created_at": r.CreatedAt})
	}
	write := func() {
		t.Helper()
		b, err := json.Marshal(legacy)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, RowsFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write()
	again, err := RecheckDir(dir, tokensvcAPI(t))
	if err != nil || !again.Same {
		t.Fatalf("legacy rows: %v, re-judged %s %v, live %s %v", err, again.Fresh.Verdict, again.Fresh.Counts, run.Result.Verdict, run.Result.Counts)
	}
	loaded, err := Load(dir, tokensvcAPI(t))
	if err != nil || loaded.Rows[0].Tenant != "m-1" || loaded.Rows[0].Key != "c-0" {
		t.Fatalf("loaded %v, %+v", err, loaded.Rows)
	}
	legacy[0]["email"] = "someone@else.test"
	write()
	if again, err = RecheckDir(dir, tokensvcAPI(t)); err != nil || again.Same || again.Fresh.Counts[check.RuleRows] != 1 {
		t.Errorf("a legacy row with another email: %v, %v", err, again.Fresh.Counts)
	}
}
