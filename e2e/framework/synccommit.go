package framework

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SynchronousCommit returns, per running token-service pod, the synchronous_commit its own
// database sessions run with, as the pod logged it once its pool was ready ("database ready"):
// the session's SHOW synchronous_commit, through the pool, so that a setting made by the
// server's configuration and one made by the service per connection both show. A pod whose log
// has no such line is an error.
func (d *Deployment) SynchronousCommit(ctx context.Context) (map[string]string, error) {
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
		v, ok := syncCommitOf(raw)
		if !ok {
			return nil, fmt.Errorf("logs of %s: no \"database ready\" line naming synchronous_commit", p.Name)
		}
		out[p.Name] = v
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no running target pod in %s", d.Namespace)
	}
	return out, nil
}

// syncCommitOf finds the last "database ready" line of a target pod's JSON log and its
// synchronous_commit.
func syncCommitOf(log []byte) (string, bool) {
	var (
		value string
		found bool
	)
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg        string  `json:"msg"`
			SyncCommit *string `json:"synchronous_commit"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "database ready" || line.SyncCommit == nil {
			continue
		}
		value, found = *line.SyncCommit, true
	}
	return value, found
}

// ExpectSynchronousCommit fails the spec unless every token-service pod's sessions run with
// synchronous_commit want: the proof that a durability twin tests the setting it claims to.
func (d *Deployment) ExpectSynchronousCommit(ctx context.Context, want string) {
	GinkgoHelper()
	By("reading the synchronous_commit of every replica's database sessions from its log: want " + want)
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
