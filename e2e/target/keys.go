package target

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// KeyPlaceholders are the names a keys file line (create.auth.keys.line) may hold as {{name}}.
var KeyPlaceholders = []string{"tenant", "key", "sha256"}

// NewKey makes a fresh key in f's format: Prefix and 32 random bytes, unpadded base64url.
func (f KeyFormat) NewKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate api key: %w", err)
	}
	return f.Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// FileLine is the keys-file line, without its newline, that lets key act for tenant.
func (f KeyFormat) FileLine(tenant, key string) string {
	sum := sha256.Sum256([]byte(key))
	return Expand(f.Line, map[string]string{"tenant": tenant, "key": key, "sha256": hex.EncodeToString(sum[:])})
}

// File is the keys file of keys (tenant -> key): one FileLine per key, sorted by tenant, each
// ending in a newline.
func (f KeyFormat) File(keys map[string]string) []byte {
	var b strings.Builder
	for _, tenant := range slices.Sorted(maps.Keys(keys)) {
		b.WriteString(f.FileLine(tenant, keys[tenant]) + "\n")
	}
	return []byte(b.String())
}
