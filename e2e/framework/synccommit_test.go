package framework

import "testing"

func TestSyncCommitOf(t *testing.T) {
	for _, tc := range []struct {
		name, log, want string
		ok              bool
	}{
		{name: "ready", log: `{"msg":"starting"}` + "\n" + `{"level":"INFO","msg":"database ready","unique_index":true,"synchronous_commit":"off"}` + "\n", want: "off", ok: true},
		{name: "the last of a restarted pool", log: `{"msg":"database ready","synchronous_commit":"off"}` + "\n" + `{"msg":"database ready","synchronous_commit":"on"}`, want: "on", ok: true},
		{name: "an older service that did not log it", log: `{"msg":"database ready","unique_index":true}`},
		{name: "not JSON", log: "database ready synchronous_commit=off"},
		{name: "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := syncCommitOf([]byte(tc.log)); got != tc.want || ok != tc.ok {
				t.Errorf("syncCommitOf = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
