package traffic

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// ordersCreate and ordersIdentity are an orders API's create and identity sections: the key in
// an Idempotency-Key header that create.headers leaves out, the tenant's key in X-Api-Key, a body
// of its own fields.
var (
	ordersCreate = target.Create{
		Method: http.MethodPost,
		Path:   "/orders",
		Auth:   &target.Auth{Scheme: "header", Header: "X-Api-Key"},
		Body:   map[string]string{"shop": "{{tenant}}", "contact": "{{email}}", "item": "{{name}}", "note": ""},
	}
	ordersIdentity = target.Identity{Key: target.Source{Header: "Idempotency-Key"}, Tenant: target.Source{Field: "shop"}}
)

func TestRequestOfHeaderIdentityAndAuth(t *testing.T) {
	r := target.RequestOf(ordersCreate, ordersIdentity)
	want := request.Template{
		Method:  http.MethodPost,
		Path:    "/orders",
		Headers: map[string]string{"Idempotency-Key": "{{key}}"},
		Auth:    request.Auth{Header: "X-Api-Key"},
		Body:    ordersCreate.Body,
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("RequestOf = %+v, want %+v", r, want)
	}
	c := history.Customer{Tenant: "m-1", EntityKey: "c-5-2", Email: "c-5-2@stampede.test", Name: "Customer 3"}
	if got := string(r.BodyOf(c)); got != `{"contact":"c-5-2@stampede.test","item":"Customer 3","shop":"m-1"}` {
		t.Errorf("body %s: want every member but the empty note, in the order of their names", got)
	}
	h := r.Header(c)
	if h.Get("Idempotency-Key") != "c-5-2" || h.Get("Content-Type") != "application/json" || len(h) != 2 {
		t.Errorf("headers %v", h)
	}
	if err := r.Validate(); err != nil {
		t.Error(err)
	}
	bad := r
	bad.Headers = map[string]string{"x-api-key": "k"}
	if bad.Validate() == nil {
		t.Error("a header that the key goes in passed")
	}
}

// TestRunSendsAnOrdersRequest runs an orders API's request: each request names its key in
// Idempotency-Key, carries its tenant's key bare in X-Api-Key (or a wrong one, of every kind),
// and the body the template makes.
func TestRunSendsAnOrdersRequest(t *testing.T) {
	keys := testKeysFor(4)
	tenantOf := map[string]string{}
	for m, k := range keys {
		tenantOf[k] = m
	}
	var (
		mu    sync.Mutex
		kinds = map[history.KeyKind]int{}
	)
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("decode: %v", err)
		}
		if r.URL.Path != "/orders" || r.Header.Get("Idempotency-Key") == "" || body["shop"] == "" || body["item"] == "" {
			t.Errorf("%s %s %v: want POST /orders with an Idempotency-Key and the body's members", r.Method, r.URL.Path, body)
		}
		if r.Header.Get(AuthorizationHeader) != "" {
			t.Errorf("an Authorization header: the key goes in X-Api-Key")
		}
		key := r.Header.Get("X-Api-Key")
		kind := history.KeyMalformed
		switch m, ok := tenantOf[key]; {
		case key == "":
			kind = history.KeyNone
		case ok && m == body["shop"]:
			kind = history.KeyOwn
		case ok:
			kind = history.KeyForeign
		case len(key) == len(keys["m-0"]) && key[:3] == keys["m-0"][:3]:
			kind = history.KeyUnknown
		}
		mu.Lock()
		kinds[kind]++
		mu.Unlock()
		w.Header().Set(testPodHeader, "pod-0")
		w.WriteHeader(http.StatusCreated)
	})
	out, err := Run(context.Background(), Params{URL: svc.URL, Request: target.RequestOf(ordersCreate, ordersIdentity),
		Customers: Customers(3, 24, 4), Burst: 8, Gap: time.Millisecond, Keys: keys, Wrong: WrongKeys{Customers: 1, Every: 2},
		Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sent := map[history.KeyKind]int{}
	for _, op := range out.History {
		sent[op.SentKey()]++
	}
	if !reflect.DeepEqual(sent, kinds) {
		t.Errorf("the service saw keys %v, the history says %v", kinds, sent)
	}
	for _, k := range []history.KeyKind{history.KeyOwn, history.KeyForeign, history.KeyNone, history.KeyMalformed, history.KeyUnknown} {
		if kinds[k] == 0 {
			t.Errorf("no request with a key of kind %q: %v", k, kinds)
		}
	}
}

// TestCustomersPinned pins what a seed derives: a change here replays no earlier run.
func TestCustomersPinned(t *testing.T) {
	got := Customers(42, 3, 2)
	want := []history.Customer{
		{Index: 0, Tenant: "m-0", EntityKey: "c-42-0", Email: "c-42-0@stampede.test", Name: "Customer 0"},
		{Index: 1, Tenant: "m-1", EntityKey: "c-42-0", Email: "c-42-0@stampede.test", Name: "Customer 1"},
		{Index: 2, Tenant: "m-0", EntityKey: "c-42-2", Email: "c-42-2@stampede.test", Name: "Customer 2"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Customers(42, 3, 2) = %+v\nwant %+v", got, want)
	}
	picked := func(f func(history.Customer) bool) (n int) {
		for _, c := range Customers(42, 200, 8) {
			if f(c) {
				n++
			}
		}
		return n
	}
	// The picks hash the natural key: pinned so that the same seed sends the same wrong keys.
	if f, w := picked(ForeignKeys{Customers: 0.3}.Picks), picked(DefaultWrongKeys.Picks); f != pinnedForeign || w != pinnedWrong {
		t.Errorf("picked %d foreign and %d wrong-key customers of 200, pinned %d and %d", f, w, pinnedForeign, pinnedWrong)
	}
}

const pinnedForeign, pinnedWrong = 57, 49
