package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestAPIKeys(t *testing.T) {
	const key = "k3y-0f-the-reporting-j0b"
	file := writeFile(t, "keys", []byte("# name hash scopes\n\n"+
		"reporting "+HashKey(key)+" reports:read orders:read\n"+
		"  ops   "+strings.TrimPrefix(HashKey("another"), HashPrefix)+"\n"))
	keys, err := LoadAPIKeys(file)
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewKeyStore(keys)
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.Verify(key)
	if err != nil || id.Subject != "reporting" || id.Scheme != SchemeAPIKey || strings.Join(id.Scopes, ",") != "reports:read,orders:read" || id.Claims != nil {
		t.Errorf("Verify(valid) = %+v, %v", id, err)
	}
	if id, err := store.Verify("another"); err != nil || id.Subject != "ops" || len(id.Scopes) != 0 {
		t.Errorf("Verify(ops) = %+v, %v", id, err)
	}
	var r *Refusal
	for _, bad := range []string{"", key + "x", key[:len(key)-1], strings.ToUpper(key)} {
		if _, err := store.Verify(bad); !errors.As(err, &r) || r.Code != CodeInvalidAPIKey || strings.Contains(r.Error(), key) {
			t.Errorf("Verify(%q) = %v", bad, err)
		}
	}
}

func TestAPIKeyFileErrors(t *testing.T) {
	const secret = "plain-text-key-pasted-by-mistake"
	tests := []struct {
		name, content, want string
	}{
		{"plain key instead of hash", "ops " + secret + "\n", "line 1 (ops): not a key hash"},
		{"no hash", "ops\n", "line 1: want: name"},
		{"bad name", "o/ps " + HashKey("x") + "\n", "name"},
		{"bad hex", "ops sha256:" + strings.Repeat("zz", 32) + "\n", "64 hex digits"},
		{"bad scope", "ops " + HashKey("x") + " a\"b\n", "scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadAPIKeys(writeFile(t, "keys", []byte(tt.content)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error repeats the key: %v", err)
			}
		})
	}
	h, _ := ParseHash(HashKey("x"))
	if _, err := NewKeyStore([]APIKey{{Name: "a", Hash: h}, {Name: "b", Hash: h}}); err == nil {
		t.Error("two names for one key accepted")
	}
	if _, err := NewKeyStore([]APIKey{{Name: "a", Hash: h}, {Name: "a", Hash: [32]byte{1}}}); err == nil {
		t.Error("one name twice accepted")
	}
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		in, scheme, cred string
		ok               bool
	}{
		{"Bearer abc.def.ghi", "Bearer", "abc.def.ghi", true},
		{"bearer   abc ", "bearer", "abc", true},
		{"\tApiKey\tk-1==", "ApiKey", "k-1==", true},
		{"Bearer", "", "", false},
		{"Bearer ", "", "", false},
		{" abc", "", "", false},
		{"Bearer a b", "", "", false},
		{"Bearer a\x00", "", "", false},
		{"Bearer é", "", "", false},
		{"Be(arer x", "", "", false},
		{"Bearer " + strings.Repeat("a", MaxCredentialBytes+1), "", "", false},
	}
	for _, tt := range tests {
		s, c, ok := ParseAuthorization(tt.in)
		if s != tt.scheme || c != tt.cred || ok != tt.ok {
			t.Errorf("ParseAuthorization(%q) = %q, %q, %v", tt.in, s, c, ok)
		}
	}
}

// FuzzParseAuthorization checks that any header value parses without a
// panic into a token scheme and one visible-ASCII credential, and that a
// parsed value written back parses the same.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer eyJ.eyJ.sig", "ApiKey k", "Basic dXNlcjpwYXNz", "", " ", "Bearer  a b", "x\x00 y", "Bearer \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		scheme, cred, ok := ParseAuthorization(v)
		if !ok {
			if scheme != "" || cred != "" {
				t.Fatalf("not ok but returned %q %q", scheme, cred)
			}
			return
		}
		if !isToken(scheme) || !IsCredential(cred) {
			t.Fatalf("ParseAuthorization(%q) = %q, %q", v, scheme, cred)
		}
		if s2, c2, ok2 := ParseAuthorization(scheme + " " + cred); !ok2 || s2 != scheme || c2 != cred {
			t.Fatalf("round trip of %q: %q %q %v", v, s2, c2, ok2)
		}
	})
}
