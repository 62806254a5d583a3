package framework

import (
	"testing"

	"github.com/stampede-e2e/stampede/e2e/target"
)

func TestSyncCommitOf(t *testing.T) {
	ready := target.LogLine{Match: map[string]string{"msg": "database ready"}, Field: "synchronous_commit"}
	for _, tc := range []struct {
		name, log, want string
		line            target.LogLine
		ok              bool
	}{
		{name: "ready", log: `{"msg":"starting"}` + "\n" + `{"level":"INFO","msg":"database ready","unique_index":true,"synchronous_commit":"off"}` + "\n", want: "off", ok: true},
		{name: "the last of a restarted pool", log: `{"msg":"database ready","synchronous_commit":"off"}` + "\n" + `{"msg":"database ready","synchronous_commit":"on"}`, want: "on", ok: true},
		{name: "an older service that did not log it", log: `{"msg":"database ready","unique_index":true}`},
		{name: "not JSON", log: "database ready synchronous_commit=off"},
		{name: "another line naming it", log: `{"msg":"pool closed","synchronous_commit":"off"}`},
		{name: "not a string", log: `{"msg":"database ready","synchronous_commit":false}`},
		{name: "empty"},
		// Another logger's members, matched on two of them.
		{name: "another format", log: `{"event":"db","phase":"warm","sync":"local"}` + "\n" + `{"event":"db","phase":"ready","sync":"remote_apply"}`,
			line: target.LogLine{Match: map[string]string{"event": "db", "phase": "ready"}, Field: "sync"}, want: "remote_apply", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := tc.line
			if line.Field == "" {
				line = ready
			}
			if got, ok := syncCommitOf([]byte(tc.log), line); got != tc.want || ok != tc.ok {
				t.Errorf("syncCommitOf = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if got := matchText(map[string]string{"phase": "ready", "event": "db"}); got != `event="db" phase="ready"` {
		t.Errorf("matchText = %s", got)
	}
}
