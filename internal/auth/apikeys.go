package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// APIKey is one accepted key: its name (the subject of calls made with
// it), the SHA-256 hash of the key, and the scopes it grants.
type APIKey struct {
	Name   string
	Hash   [sha256.Size]byte
	Scopes []string
}

// HashPrefix starts the written form of a key hash: sha256:<64 hex digits>.
const HashPrefix = "sha256:"

// HashKey returns the written form of key's hash, as API key files and
// configuration hold it.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return HashPrefix + hex.EncodeToString(sum[:])
}

// ParseHash reads a key hash written as sha256:<64 hex digits> (or the 64
// hex digits alone). The error does not repeat the value: a key pasted in
// by mistake stays out of logs.
func ParseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	s = strings.TrimPrefix(s, HashPrefix)
	if len(s) != 2*sha256.Size {
		return h, errors.New("not a key hash: write sha256:<64 hex digits>, the SHA-256 of the key (printf %s KEY | sha256sum), never the key itself")
	}
	if _, err := hex.Decode(h[:], []byte(strings.ToLower(s))); err != nil {
		return h, errors.New("not a key hash: the SHA-256 must be 64 hex digits")
	}
	return h, nil
}

var (
	keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$`)
	scopePattern   = regexp.MustCompile(`^[!#-\[\]-~]{1,256}$`) // RFC 6749 scope-token: visible ASCII but " and \
)

// CheckKey reports what is wrong with a key's name or scopes.
func CheckKey(k APIKey) error {
	if !keyNamePattern.MatchString(k.Name) {
		return fmt.Errorf("API key name %q: use letters, digits and _ . @ : - (at most 128)", k.Name)
	}
	for _, s := range k.Scopes {
		if !scopePattern.MatchString(s) {
			return fmt.Errorf("API key %s: scope %q is not an OAuth scope token", k.Name, s)
		}
	}
	if k.Hash == [sha256.Size]byte{} {
		return fmt.Errorf("API key %s: no hash", k.Name)
	}
	return nil
}

// LoadAPIKeys reads an API key file: one key a line, as
//
//	name sha256:<64 hex digits> [scope ...]
//
// with blank lines and lines starting with # ignored. Errors name the
// file and the line, never the line's content beyond the key's name.
func LoadAPIKeys(path string) ([]APIKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("API keys: %w", err)
	}
	var keys []APIKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("API keys %s, line %d: want: name sha256:<hash> [scope ...]", path, n)
		}
		h, err := ParseHash(f[1])
		if err != nil {
			return nil, fmt.Errorf("API keys %s, line %d (%s): %w", path, n, f[0], err)
		}
		k := APIKey{Name: f[0], Hash: h, Scopes: f[2:]}
		if err := CheckKey(k); err != nil {
			return nil, fmt.Errorf("API keys %s, line %d: %w", path, n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("API keys %s: %w", path, err)
	}
	return keys, nil
}

// KeyStore holds the accepted API keys. It is read-only once made and safe
// for concurrent use.
type KeyStore struct {
	keys []APIKey
}

// NewKeyStore returns a store of keys; two keys with one name or one hash
// are an error.
func NewKeyStore(keys []APIKey) (*KeyStore, error) {
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]string{}
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return nil, err
		}
		if names[k.Name] {
			return nil, fmt.Errorf("API key name %s given twice", k.Name)
		}
		if other, dup := hashes[k.Hash]; dup {
			return nil, fmt.Errorf("API keys %s and %s are the same key", other, k.Name)
		}
		names[k.Name], hashes[k.Hash] = true, k.Name
	}
	return &KeyStore{keys: append([]APIKey(nil), keys...)}, nil
}

// Len returns the number of keys.
func (s *KeyStore) Len() int { return len(s.keys) }

// Verify returns the identity of key, or a Refusal. The key's hash is
// compared with every accepted hash in constant time, so the time taken
// says nothing about how close a guess came.
func (s *KeyStore) Verify(key string) (*Identity, error) {
	sum := sha256.Sum256([]byte(key))
	match := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], s.keys[i].Hash[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return nil, &Refusal{Code: CodeInvalidAPIKey, Reason: "the API key is not valid"}
	}
	k := s.keys[match]
	return &Identity{Scheme: SchemeAPIKey, Subject: k.Name, Scopes: append([]string(nil), k.Scopes...)}, nil
}
