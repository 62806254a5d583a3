// Package apikey is the format of the token service's merchant API keys and of the keys file
// (TOKENSVC_API_KEYS_FILE) that lists their hashes. The service reads the file with ParseFile;
// the e2e suite, which cannot import the service's internal packages, makes keys with Generate
// and writes the file with FileLine, so both sides share one format.
//
// The file has one key a line:
//
//	# comment
//	<merchant_id> sha256:<64 lowercase hex digits>
//
// where the hex is the SHA-256 of the whole key as the client sends it in
// "Authorization: Bearer <key>". Blank lines and lines starting with # are ignored. A merchant
// may have several lines (a key rotation: add the new key, move the clients, drop the old one).
// merchant_id is 1 to 128 printable characters without whitespace. The file holds no secret:
// a hash does not give the key back, since keys are 256 random bits.
package apikey

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Prefix starts every key Generate makes, so that a leaked key is recognisable (secret scanners
// look for such prefixes). The service accepts any key whose hash is listed.
const Prefix = "sk_"

// HashPrefix starts every hash in the keys file, naming the algorithm.
const HashPrefix = "sha256:"

// MaxMerchantIDLen is the longest merchant_id, in characters, as in a registration.
const MaxMerchantIDLen = 128

// Generate returns a new random key: Prefix and the unpadded base64url encoding of 32 random
// bytes.
func Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate api key: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns key as the keys file holds it: HashPrefix and the lowercase hex SHA-256 of the
// whole key string.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return HashPrefix + hex.EncodeToString(sum[:])
}

// FileLine returns the keys-file line, without its newline, that lets key act for merchantID.
func FileLine(merchantID, key string) string {
	return merchantID + " " + Hash(key)
}

// Entry is one key of a keys file, by its hash.
type Entry struct {
	// MerchantID is the merchant the key may act for.
	MerchantID string
	// Digest is the SHA-256 of the key.
	Digest [sha256.Size]byte
	// Line is the entry's line number in the file, from 1.
	Line int
}

// Set is the keys of one keys file.
type Set []Entry

// ParseFile reads a keys file. An error names the first wrong line by its number and never
// quotes it: the line might be a key pasted in by mistake.
func ParseFile(r io.Reader) (Set, error) {
	var set Set
	sc := bufio.NewScanner(r)
	seen := map[[sha256.Size]byte]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if first, dup := seen[e.Digest]; dup {
			return nil, fmt.Errorf("line %d: the same key as line %d: a key acts for one merchant, listed once", n, first)
		}
		seen[e.Digest] = n
		e.Line = n
		set = append(set, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	if len(set) == 0 {
		return nil, errors.New("no keys: every line is blank or a comment")
	}
	return set, nil
}

const format = `want "<merchant_id> sha256:<64 lowercase hex digits>"`

func parseLine(line string) (Entry, error) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return Entry{}, fmt.Errorf("%d fields, %s", len(fields), format)
	}
	merchant, hash := fields[0], fields[1]
	if utf8.RuneCountInString(merchant) > MaxMerchantIDLen || !printable(merchant) {
		return Entry{}, fmt.Errorf("merchant_id must be 1 to %d printable characters, %s", MaxMerchantIDLen, format)
	}
	if strings.HasPrefix(hash, Prefix) {
		return Entry{}, fmt.Errorf("a key where its hash belongs (the file lists Hash(key), never keys), %s", format)
	}
	digits, ok := strings.CutPrefix(hash, HashPrefix)
	if !ok || len(digits) != 2*sha256.Size || strings.ToLower(digits) != digits {
		return Entry{}, errors.New(format)
	}
	var e Entry
	if _, err := hex.Decode(e.Digest[:], []byte(digits)); err != nil {
		return Entry{}, errors.New(format)
	}
	e.MerchantID = merchant
	return e, nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// Authenticate returns the merchant that key may act for, and false when no entry lists it.
// It hashes key and compares the hash with every entry in constant time, whether or not an
// earlier one matched, so that how long it takes tells nothing about which entry, if any,
// matched.
func (s Set) Authenticate(key string) (merchantID string, ok bool) {
	digest := sha256.Sum256([]byte(key))
	match := -1
	for i := range s {
		eq := subtle.ConstantTimeCompare(digest[:], s[i].Digest[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return "", false
	}
	return s[match].MerchantID, true
}

// Merchants returns how many distinct merchants s has keys for.
func (s Set) Merchants() int {
	m := map[string]bool{}
	for _, e := range s {
		m[e.MerchantID] = true
	}
	return len(m)
}
