package check

import "testing"

// TestAnswerOf reads answers by a target's pointers: a created flag in the body, or told by the
// status when the API has none, and a body that is no object saying nothing.
func TestAnswerOf(t *testing.T) {
	flag := API{ID: "/data/id", Created: "/created", Credential: "/cred", ErrorCode: "/error/code",
		New: Promise{Status: 200}, Existing: Promise{Status: 200}}
	got := flag.AnswerOf(200, `{"data":{"id":"e-1"},"created":true,"cred":"c-1"}`)
	if !got.HasID || got.ID != "e-1" || !got.HasCredential || got.Credential != "c-1" || got.Created == nil || !*got.Created {
		t.Errorf("flag API: %+v", got)
	}
	got = flag.AnswerOf(200, `{"data":{"id":7},"cred":""}`)
	if got.HasID || !got.HasCredential || got.Credential != "" || got.Created != nil {
		t.Errorf("flag API, id a number, no flag, empty credential: %+v", got)
	}
	status := API{ID: "/id", Credential: "/id", New: Promise{Status: 201}, Existing: Promise{Status: 200}}
	if got := status.AnswerOf(201, `{"id":"o-1"}`); got.Created == nil || !*got.Created || got.Credential != "o-1" {
		t.Errorf("status API, 201: %+v", got)
	}
	if got := status.AnswerOf(200, `{"id":"o-1"}`); got.Created == nil || *got.Created {
		t.Errorf("status API, 200: %+v", got)
	}
	if got := status.AnswerOf(200, `<html>`); got.HasID || got.HasCredential || got.Created == nil {
		t.Errorf("status API, not JSON: %+v; want nothing read but the status", got)
	}
	if code, ok := flag.ErrorCodeOf(`{"error":{"code":"conflict"}}`); !ok || code != "conflict" {
		t.Errorf("error code %q %v", code, ok)
	}
	if _, ok := flag.ErrorCodeOf(`oops`); ok {
		t.Errorf("an error code in a body that is not JSON")
	}
}
