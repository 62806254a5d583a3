package traffic

import (
	"strconv"
	"strings"
	"time"
)

// ServerTimingHeader is the header in which the token service reports its handler's interval:
//
//	Server-Timing: handler;dur=0.532;desc="start=1767225600000000000 end=1767225600000532000"
//
// (service/README.md): start and end are Unix nanoseconds on the serving pod's wall clock.
const ServerTimingHeader = "Server-Timing"

// handlerMetric is the Server-Timing metric that carries the handler's interval.
const handlerMetric = "handler"

// parseHandlerInterval finds the handler metric in the Server-Timing values of a response and
// returns its start and end. Anything absent or malformed gives ok false, never an error: a
// response without a usable interval is still a response, only one that proves less.
func parseHandlerInterval(values []string) (start, end time.Time, ok bool) {
	for _, v := range values {
		for _, metric := range splitOutsideQuotes(v, ',') {
			params := splitOutsideQuotes(metric, ';')
			if !strings.EqualFold(strings.TrimSpace(params[0]), handlerMetric) {
				continue
			}
			for _, p := range params[1:] {
				name, value, found := strings.Cut(p, "=")
				if !found || !strings.EqualFold(strings.TrimSpace(name), "desc") {
					continue
				}
				return parseStartEnd(unquote(strings.TrimSpace(value)))
			}
			return time.Time{}, time.Time{}, false
		}
	}
	return time.Time{}, time.Time{}, false
}

// parseStartEnd reads "start=<ns> end=<ns>" with 0 < start <= end.
func parseStartEnd(desc string) (start, end time.Time, ok bool) {
	var s, e int64
	for _, f := range strings.Fields(desc) {
		name, value, _ := strings.Cut(f, "=")
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n <= 0 {
			return time.Time{}, time.Time{}, false
		}
		switch name {
		case "start":
			s = n
		case "end":
			e = n
		}
	}
	if s == 0 || e == 0 || e < s {
		return time.Time{}, time.Time{}, false
	}
	return time.Unix(0, s), time.Unix(0, e), true
}

// splitOutsideQuotes splits s at sep where sep is not inside a quoted-string (RFC 9110 5.6.4).
func splitOutsideQuotes(s string, sep byte) []string {
	var (
		parts  []string
		quoted bool
		from   int
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[from:i])
			from = i + 1
		}
	}
	return append(parts, s[from:])
}

// unquote returns the content of a quoted-string, or s itself when it is a token.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
