package attack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// The API keys file that the attacker reads (-api-keys): one tenant a line, its id and its
// key separated by blanks; blank lines and lines starting with # are left out. The suite
// renders it (FormatKeys) into a Secret that the Job mounts, so that no key appears in the
// pods' arguments, environment or logs.

// ParseKeys reads an API keys file into a map from tenant id to key. Its errors name the
// line, never its content: a malformed line may hold a key.
func ParseKeys(r io.Reader) (map[string]string, error) {
	keys := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("api keys line %d: %d fields, want <tenant> <key>", n, len(f))
		}
		if _, dup := keys[f[0]]; dup {
			return nil, fmt.Errorf("api keys line %d: tenant %q has a key already", n, f[0])
		}
		keys[f[0]] = f[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read api keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("api keys file holds no key")
	}
	return keys, nil
}

// FormatKeys renders keys as an API keys file, tenants in order; ParseKeys reads it back.
// It refuses a tenant id or key that the format cannot carry: empty, with a blank in it, or
// a tenant id starting with #.
func FormatKeys(keys map[string]string) ([]byte, error) {
	if len(keys) == 0 {
		return nil, errors.New("format api keys: no key")
	}
	var b bytes.Buffer
	b.WriteString("# <tenant> <api key>, one tenant a line (stampede-attacker -api-keys)\n")
	for _, m := range slices.Sorted(maps.Keys(keys)) {
		k := keys[m]
		switch {
		case m == "" || strings.HasPrefix(m, "#") || len(strings.Fields(m)) != 1 || strings.Fields(m)[0] != m:
			return nil, fmt.Errorf("format api keys: tenant id %q cannot be written in the file", m)
		case k == "" || len(strings.Fields(k)) != 1 || strings.Fields(k)[0] != k:
			return nil, fmt.Errorf("format api keys: the key of tenant %q is empty or holds a blank", m)
		}
		fmt.Fprintf(&b, "%s %s\n", m, k)
	}
	return b.Bytes(), nil
}
