package attackjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/stampede-e2e/stampede/e2e/attack"
)

// Pod is what became of one pod of the Job.
type Pod struct {
	Name, Node string
	Index      int
	Phase      corev1.PodPhase
	// Started is when its container started (zero if it never did).
	Started time.Time
	// Log is the pod's whole log (its output and its logging), as the API returned it.
	Log []byte
	// Output is Log parsed (attack.ParseOutput); OutputErr says why it could not be.
	Output    attack.Output
	OutputErr error
}

// Result is a finished Job: its pods, by index, and how long it took.
type Result struct {
	Pods []Pod
	// Took is from the Job's creation to its completion.
	Took time.Duration
}

// Outputs are the pods' parsed outputs, for attack.Merge; it fails when any pod's is missing or
// unreadable.
func (r *Result) Outputs() ([]attack.Output, error) {
	var (
		outs []attack.Output
		errs []error
	)
	for _, p := range r.Pods {
		if p.OutputErr != nil {
			errs = append(errs, fmt.Errorf("pod %s (index %d): %w", p.Name, p.Index, p.OutputErr))
			continue
		}
		outs = append(outs, p.Output)
	}
	return outs, errors.Join(errs...)
}

// PollEvery is how often Run looks at the Job.
var PollEvery = time.Second

// Run creates the Job Render makes of p, waits until it completes or fails (bounded by ctx),
// reads every pod's log and deletes the Job. A Job that did not complete is an error that
// names each pod's state and the end of its log; the Result holds what was read anyway.
func Run(ctx context.Context, cs kubernetes.Interface, p Params, log *slog.Logger) (*Result, error) {
	job, err := Render(p)
	if err != nil {
		return nil, err
	}
	jobs := cs.BatchV1().Jobs(p.Namespace)
	created, err := jobs.Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create job %s/%s: %w", p.Namespace, p.Name, err)
	}
	defer func() {
		// The pods go with the Job; a fresh context: ctx may be what ended the wait.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := jobs.Delete(dctx, p.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		if err != nil {
			log.Warn("deleting the attacker job", "job", p.Name, "err", err)
		}
	}()
	start := created.CreationTimestamp.Time
	if start.IsZero() {
		start = time.Now()
	}
	log.Info("attacker job created", "job", p.Name, "namespace", p.Namespace, "pods", p.Plan.Shard.Count,
		"start", p.Plan.Start.UTC().Format(time.RFC3339Nano), "in", time.Until(p.Plan.Start).Round(time.Millisecond))

	done, waitErr := wait(ctx, cs, p)
	res := &Result{Took: time.Since(start)}
	// Logs are read even when the wait failed: they say why. A fresh context for the same reason.
	lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods, listErr := readPods(lctx, cs, p)
	res.Pods = pods
	switch {
	case waitErr != nil:
		return res, fmt.Errorf("attacker job %s: %w\n%s", p.Name, waitErr, describe(pods))
	case listErr != nil:
		return res, fmt.Errorf("attacker job %s: %w", p.Name, listErr)
	case !done:
		return res, fmt.Errorf("attacker job %s failed\n%s", p.Name, describe(pods))
	}
	if len(pods) != p.Plan.Shard.Count {
		return res, fmt.Errorf("attacker job %s completed with %d pods, want %d\n%s", p.Name, len(pods), p.Plan.Shard.Count, describe(pods))
	}
	return res, nil
}

// wait polls the Job until it has a Complete (true) or Failed (false) condition.
func wait(ctx context.Context, cs kubernetes.Interface, p Params) (bool, error) {
	tick := time.NewTicker(PollEvery)
	defer tick.Stop()
	for {
		j, err := cs.BatchV1().Jobs(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err == nil {
			if ok, finished := finished(j); finished {
				return ok, nil
			}
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("not finished: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// finished says whether j has finished, and whether it completed.
func finished(j *batchv1.Job) (completed, done bool) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true
		case batchv1.JobFailed:
			return false, true
		}
	}
	return false, false
}

// readPods lists the Job's pods, sorted by index, with their logs and outputs.
func readPods(ctx context.Context, cs kubernetes.Interface, p Params) ([]Pod, error) {
	list, err := cs.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: JobLabel + "=" + p.Name})
	if err != nil {
		return nil, fmt.Errorf("list its pods: %w", err)
	}
	var (
		pods []Pod
		errs []error
	)
	for _, kp := range list.Items {
		pod := Pod{Name: kp.Name, Node: kp.Spec.NodeName, Phase: kp.Status.Phase, Index: -1}
		if i, err := strconv.Atoi(kp.Annotations[IndexAnnotation]); err == nil {
			pod.Index = i
		}
		for _, s := range kp.Status.ContainerStatuses {
			if s.Name != Container {
				continue
			}
			if s.State.Running != nil {
				pod.Started = s.State.Running.StartedAt.Time
			}
			if s.State.Terminated != nil {
				pod.Started = s.State.Terminated.StartedAt.Time
			}
		}
		if pod.Started.IsZero() {
			pod.OutputErr = fmt.Errorf("never started (%s%s)", kp.Status.Phase, waiting(&kp))
		} else {
			raw, err := cs.CoreV1().Pods(p.Namespace).GetLogs(kp.Name, &corev1.PodLogOptions{Container: Container}).DoRaw(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("log of %s: %w", kp.Name, err))
				pod.OutputErr = err
			} else {
				pod.Log = raw
				pod.Output, pod.OutputErr = attack.ParseOutput(raw)
			}
		}
		pods = append(pods, pod)
	}
	slices.SortFunc(pods, func(a, b Pod) int { return a.Index - b.Index })
	return pods, errors.Join(errs...)
}

// waiting says why a pod's container waits, if it does.
func waiting(p *corev1.Pod) string {
	for _, s := range p.Status.ContainerStatuses {
		if w := s.State.Waiting; w != nil {
			return ", " + w.Reason + ": " + w.Message
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			return ", unscheduled: " + c.Message
		}
	}
	return ""
}

// describe says, a line per pod, where it ran, how it ended and the end of its log.
func describe(pods []Pod) string {
	if len(pods) == 0 {
		return "  (no pods)"
	}
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "  pod %s (index %d) on %s: %s", p.Name, p.Index, p.Node, p.Phase)
		if p.Output.Error != "" {
			fmt.Fprintf(&b, ": %s", p.Output.Error)
		} else if p.OutputErr != nil {
			fmt.Fprintf(&b, ": %v", p.OutputErr)
		}
		b.WriteString("\n")
		lines := p.Output.Log
		if len(lines) == 0 && len(p.Log) > 0 && p.OutputErr != nil {
			lines = strings.Split(strings.TrimSpace(string(p.Log)), "\n")
		}
		for _, l := range lines[max(0, len(lines)-5):] {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	return b.String()
}
