package report

import (
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// The figures of results.json that the trend page reads, each a report entry of a spec
// (framework.FigurePrefixes), with "[part]" appended for a judged part of a spec that judges
// several. They are named once here because the framework writes them and the trend reads them
// back from runs saved months apart.
const (
	FigureVerdict         = "verdict"
	FigureCoverageClient  = "coverage.client"
	FigureCoverageServer  = "coverage.server"
	FigureRecoverySeconds = "chaos.recovery_seconds"
	FigureFault           = "chaos.fault"
	FigureCanaryCaught    = "canary.caught"
	FigureCanaryEntities  = "canary.customers"
	// FigureDetectionRatePrefix begins a canary's detection rate saved without its counts
	// ("canary.detection_rate_with_latency"): the rest names the condition.
	FigureDetectionRatePrefix = "canary.detection_rate_"
	// FigureLatencyP50 and FigureLatencyP99 are the client latency (call to return) of the
	// answered requests of a judged part, in milliseconds, as its report.html shows them.
	FigureLatencyP50 = "traffic.latency_p50_ms"
	FigureLatencyP99 = "traffic.latency_p99_ms"
	// FigureRequests and FigureUnknown count a judged part's requests and those whose outcome
	// the client cannot know (a transport error or timeout: check.Result.Unknown).
	FigureRequests = "traffic.requests"
	FigureUnknown  = "traffic.unknown"
)

// SplitFigure splits a figure's key into its name and judged part: "coverage.client[mixed]" is
// ("coverage.client", "mixed"), "verdict" is ("verdict", "").
func SplitFigure(key string) (name, part string) {
	if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
		return key[:i], key[i+1 : len(key)-1]
	}
	return key, ""
}

// AnsweredLatency is the p50 and p99 (nearest rank) of the client latency, call to return, of
// the requests in ops that got an answer; n counts them (zero: no quantile).
func AnsweredLatency(ops []history.Op) (p50, p99 time.Duration, n int) {
	returned := answeredLatencies(ops)
	return percentile(returned, 0.50), percentile(returned, 0.99), len(returned)
}

// answeredLatencies are the client latencies, call to return, of the requests in ops that got
// an answer, sorted: what the report's and the trend's quantiles are taken from.
func answeredLatencies(ops []history.Op) []time.Duration {
	returned := make([]time.Duration, 0, len(ops))
	for _, op := range ops {
		if op.Return > 0 {
			returned = append(returned, op.Return-op.Call)
		}
	}
	slices.Sort(returned)
	return returned
}
