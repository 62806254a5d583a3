package attack

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// What an attacker pod prints on stdout: its history as history.Op JSONL, one op a line,
// counted from the plan's Start, then one trailer line, TrailerPrefix and a Trailer as JSON.
// Its logs go to stderr as slog text ("time=..."), so that in the pod's log, where the kubelet
// interleaves both streams line by line, an op is a line that starts with "{" and the trailer
// the line that starts with TrailerPrefix.
const TrailerPrefix = "#stampede-attacker "

// Trailer closes a pod's output: which shard it was, from which start, how many ops it wrote
// (so that a log cut short is told from a quiet pod) and how it went.
type Trailer struct {
	Index  int `json:"index"`
	Shards int `json:"shards"`
	// Start is the plan's start instant, Unix nanoseconds: the base of the ops' times.
	Start int64 `json:"start_unix_ns"`
	Ops   int   `json:"ops"`
	// Pod and Node say where it ran (POD_NAME and NODE_NAME, from the downward API).
	Pod  string `json:"pod,omitempty"`
	Node string `json:"node,omitempty"`
	// Slack is how long before the start the pod was ready to send; negative when it was late.
	Slack time.Duration `json:"slack_ns"`
	// Error says why the pod failed; its history holds what it sent before.
	Error string `json:"error,omitempty"`
}

// WriteOutput writes ops and then t, with t.Ops set, to w.
func WriteOutput(w io.Writer, ops []history.Op, t Trailer) error {
	t.Ops = len(ops)
	if err := history.WriteJSONL(w, ops); err != nil {
		return err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode trailer: %w", err)
	}
	if _, err := fmt.Fprintf(w, "%s%s\n", TrailerPrefix, b); err != nil {
		return fmt.Errorf("write trailer: %w", err)
	}
	return nil
}

// Output is one pod's output as read back from its log.
type Output struct {
	Trailer
	Ops []history.Op
	// Log holds the other lines of the log: the pod's own logging.
	Log []string
}

// ErrNoTrailer means a pod's log ends before its trailer: the pod did not finish, or its log
// was cut (rotated) before the suite read it.
var ErrNoTrailer = errors.New("no trailer line: the output is incomplete")

// ParseOutput reads a pod's log: every op line, the trailer, the rest as log lines. It fails
// when the trailer is missing or counts other than the ops found, or an op line does not
// decode as a history.Op.
func ParseOutput(log []byte) (Output, error) {
	var (
		out     Output
		ops     bytes.Buffer
		trailer string
	)
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "{"):
			ops.WriteString(line)
			ops.WriteByte('\n')
		case strings.HasPrefix(line, TrailerPrefix):
			if trailer != "" {
				return out, errors.New("two trailer lines")
			}
			trailer = strings.TrimPrefix(line, TrailerPrefix)
		case strings.TrimSpace(line) != "":
			out.Log = append(out.Log, line)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read log: %w", err)
	}
	var err error
	if out.Ops, err = history.ReadJSONL(&ops); err != nil {
		return out, err
	}
	if trailer == "" {
		return out, ErrNoTrailer
	}
	dec := json.NewDecoder(strings.NewReader(trailer))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out.Trailer); err != nil {
		return out, fmt.Errorf("decode trailer: %w", err)
	}
	if out.Trailer.Ops != len(out.Ops) {
		return out, fmt.Errorf("the trailer counts %d ops, the log holds %d: lines were lost", out.Trailer.Ops, len(out.Ops))
	}
	return out, nil
}
