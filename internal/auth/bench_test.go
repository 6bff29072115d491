package auth

import (
	"context"
	"crypto"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures what authentication adds to a call: verifying
// a bearer token of each key type, and an API key among 100.
func BenchmarkVerify(b *testing.B) {
	k := testKeys()
	keys := []crypto.PublicKey{&k.rsaA.PublicKey, &k.ec.PublicKey, k.ed.Public()}
	v, err := NewVerifier(JWTOptions{Keys: keys, Issuer: "https://id.example", Audience: []string{"orders"}})
	if err != nil {
		b.Fatal(err)
	}
	t := &testing.T{}
	for _, c := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
	}{{"RS256", jwt.SigningMethodRS256, k.rsaA}, {"ES256", jwt.SigningMethodES256, k.ec}, {"EdDSA", jwt.SigningMethodEdDSA, k.ed}} {
		tok := sign(t, c.method, c.key, "", claims(nil))
		b.Run("alg="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	var apiKeys []APIKey
	for i := range 100 {
		h, _ := ParseHash(HashKey(string(rune('a'+i%26)) + string(rune('0'+i/26))))
		apiKeys = append(apiKeys, APIKey{Name: "k" + string(rune('a'+i%26)) + string(rune('0'+i/26)), Hash: h})
	}
	store, err := NewKeyStore(apiKeys)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("apikey=100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := store.Verify("v3"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
