package framework

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// SynchronousCommit returns the synchronous_commit the target's own database sessions run
// with. Where the target names the log line stating it (observability.syncCommitLog), per
// running pod as the pod logged it, so that a setting made by the server's configuration and one
// the service makes per connection both show; a pod whose log has no such line is an error.
// Otherwise the setting a new session of the target's role gets, under the key "role ROLE".
func (d *Deployment) SynchronousCommit(ctx context.Context) (map[string]string, error) {
	line := d.syncCommitLog()
	if line == nil {
		return d.sessionSyncCommit(ctx)
	}
	pods := d.Env.Client.CoreV1().Pods(d.Namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: d.pods})
	if err != nil {
		return nil, fmt.Errorf("list target pods: %w", err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		raw, err := pods.GetLogs(p.Name, &corev1.PodLogOptions{Container: d.Env.Config.workload().Container}).DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("logs of %s: %w", p.Name, err)
		}
		v, ok := syncCommitOf(raw, *line)
		if !ok {
			return nil, fmt.Errorf("logs of %s: no line %s naming %s", p.Name, matchText(line.Match), line.Field)
		}
		out[p.Name] = v
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no running target pod in %s", d.Namespace)
	}
	return out, nil
}

// syncCommitLog is the target's log line naming its sessions' synchronous_commit, nil if none.
func (d *Deployment) syncCommitLog() *target.LogLine {
	if o := d.Env.Config.Target.Observability; o != nil {
		return o.SyncCommitLog
	}
	return nil
}

// sessionSyncCommit asks the bundled PostgreSQL, as the target's role in its database, what
// synchronous_commit a new session gets: the server's setting and the role's or database's.
func (d *Deployment) sessionSyncCommit(ctx context.Context) (map[string]string, error) {
	db := d.Env.Config.Target.Deploy.Database.Bundled
	if db == nil || d.DSN == "" {
		return nil, fmt.Errorf("target %s: no log line names synchronous_commit, and no bundled database to ask", d.Env.Config.Target.Name)
	}
	conn, err := pgx.Connect(ctx, d.DSN)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var v string
	if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
		return nil, fmt.Errorf("show synchronous_commit: %w", err)
	}
	return map[string]string{"role " + db.Role: v}, nil
}

// syncCommitOf finds the last line of a target pod's JSON log that line matches and its member
// line.Field, which must be a string.
func syncCommitOf(log []byte, line target.LogLine) (string, bool) {
	var (
		value string
		found bool
	)
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var members map[string]any
		if json.Unmarshal(sc.Bytes(), &members) != nil || !matches(members, line.Match) {
			continue
		}
		if v, ok := members[line.Field].(string); ok {
			value, found = v, true
		}
	}
	return value, found
}

// matches says whether every member of match is a string member of members with that value.
func matches(members map[string]any, match map[string]string) bool {
	for k, want := range match {
		if got, ok := members[k].(string); !ok || got != want {
			return false
		}
	}
	return true
}

// matchText is match for a message: `msg="database ready"`, members in order.
func matchText(match map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(match)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, match[k]))
	}
	return strings.Join(parts, " ")
}

// ExpectSynchronousCommit fails the spec unless the target's database sessions run with
// synchronous_commit want (every pod's, where its log says): the proof that a durability twin
// tests the setting it claims to.
func (d *Deployment) ExpectSynchronousCommit(ctx context.Context, want string) {
	GinkgoHelper()
	if d.syncCommitLog() != nil {
		By("reading the synchronous_commit of every replica's database sessions from its log: want " + want)
	} else {
		By("asking the database the synchronous_commit of a new session of the target's role: want " + want)
	}
	var got map[string]string
	Eventually(ctx, func() (err error) {
		got, err = d.SynchronousCommit(ctx)
		return err
	}).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed(), "read the replicas' synchronous_commit")
	for pod, v := range got {
		Expect(v).To(Equal(want), "synchronous_commit of %s's sessions", pod)
	}
	AddReportEntry("durability.synchronous_commit", fmt.Sprint(got), ReportEntryVisibilityNever)
}
