package framework

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// SigningKey is the Ed25519 key pair the suite generates for a deployment: the private half goes
// into the service's Secret, the public half stays with the suite, so tokens are verified
// independently of anything the service publishes.
type SigningKey struct {
	Public     ed25519.PublicKey
	PrivatePEM []byte
}

// NewSigningKey generates a fresh Ed25519 key pair, the private key as PEM PKCS#8 (the format the
// token service reads).
func NewSigningKey() (SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return SigningKey{}, fmt.Errorf("marshal signing key: %w", err)
	}
	return SigningKey{Public: pub, PrivatePEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}, nil
}
