package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/MicahParks/jwkset"
)

// MinRSABits is the smallest RSA key accepted for verifying tokens.
const MinRSABits = 2048

// verificationKey returns the public key of k when it can verify one of
// the accepted algorithms: an RSA key of at least MinRSABits, an ECDSA key
// or an Ed25519 key. Anything else (a symmetric secret, an X25519 key)
// is refused, so no token can be checked against it.
func verificationKey(k any) (crypto.PublicKey, bool) {
	if priv, ok := k.(interface{ Public() crypto.PublicKey }); ok {
		if _, isPub := k.(ed25519.PublicKey); !isPub {
			k = priv.Public()
		}
	}
	switch k := k.(type) {
	case *rsa.PublicKey:
		return k, k.N != nil && k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		return k, true
	case ed25519.PublicKey:
		return k, len(k) == ed25519.PublicKeySize
	}
	return nil, false
}

// CheckPublicKey reports whether k can verify tokens, naming what is wrong.
func CheckPublicKey(k crypto.PublicKey) error {
	if _, ok := verificationKey(k); !ok {
		if r, isRSA := k.(*rsa.PublicKey); isRSA && r.N != nil {
			return fmt.Errorf("an RSA key of %d bits is too small (at least %d)", r.N.BitLen(), MinRSABits)
		}
		return fmt.Errorf("a key of type %T cannot verify tokens: give an RSA, ECDSA or Ed25519 public key", k)
	}
	return nil
}

// keyFile is what a key file holds: PEM public keys, used whatever a
// token's kid, or a JWK Set, whose keys are found by kid.
type keyFile struct {
	static []crypto.PublicKey
	set    jwkset.Storage
}

// loadKeyFile reads a file of PEM public keys (PUBLIC KEY, RSA PUBLIC KEY
// or CERTIFICATE blocks) or a JWK Set (JSON, or a single JWK).
func loadKeyFile(path string) (keyFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return keyFile{}, fmt.Errorf("JWT key file: %w", err)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		set, err := parseJWKSet(trimmed, true)
		if err != nil {
			return keyFile{}, fmt.Errorf("JWT key file %s: %w", path, err)
		}
		return keyFile{set: set}, nil
	}
	keys, err := parsePEM(trimmed)
	if err != nil {
		return keyFile{}, fmt.Errorf("JWT key file %s: %w", path, err)
	}
	return keyFile{static: keys}, nil
}

func parsePEM(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var k any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				k = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("PEM block %d is a private key: give the public key only (openssl pkey -pubout)", n)
		default:
			return nil, fmt.Errorf("PEM block %d is a %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if err := CheckPublicKey(k); err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key or JWK Set found")
	}
	return keys, nil
}

// parseJWKSet reads a JWK Set (or one JWK) into memory storage, public
// parts only. strict refuses keys of unsupported types; otherwise they are
// skipped, as an identity provider may publish keys for other uses. A set
// without one usable key is an error.
func parseJWKSet(data []byte, strict bool) (*jwkset.MemoryJWKSet, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if set.Keys == nil {
		var one jwkset.JWKMarshal
		if err := json.Unmarshal(data, &one); err == nil && one.KTY != "" {
			set.Keys = []jwkset.JWKMarshal{one}
		}
	}
	store := jwkset.NewMemoryStorage()
	usable := 0
	for i, m := range set.Keys {
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: false}, jwkset.JWKValidateOptions{})
		if err == nil && m.USE != "" && m.USE != jwkset.UseSig {
			err = fmt.Errorf("%w: the key's use is %q, not sig", jwkset.ErrUnsupportedKey, m.USE)
		}
		if err == nil {
			if _, ok := verificationKey(jwk.Key()); !ok {
				err = fmt.Errorf("%w: key type %s cannot verify tokens", jwkset.ErrUnsupportedKey, m.KTY)
			}
		}
		if err != nil {
			if strict {
				return nil, fmt.Errorf("key %d (kid %q): %w", i, m.KID, err)
			}
			continue
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			return nil, err
		}
		usable++
	}
	if usable == 0 {
		return nil, errors.New("the JWK Set has no RSA, ECDSA or Ed25519 signing key")
	}
	return store, nil
}
