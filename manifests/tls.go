package manifests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// DatabaseTLS is what TLS between the token service and PostgreSQL needs: the certificate and
// key PostgreSQL serves, and the CA certificate the service verifies them with
// (sslmode=verify-full). The CA's own key is not kept: nothing else can be signed with it.
type DatabaseTLS struct {
	CACertPEM []byte
	CertPEM   []byte
	KeyPEM    []byte
}

// DatabaseHosts are the names the service may dial the database by, in namespace: PostgreSQL's
// Service and toxiproxy's (which forwards the TLS stream unchanged), short and qualified.
func DatabaseHosts(namespace string) []string {
	var hosts []string
	for _, name := range []string{PostgresName, "toxiproxy"} {
		hosts = append(hosts, name, name+"."+namespace, name+"."+namespace+".svc")
	}
	return hosts
}

// NewDatabaseTLS generates a CA and, signed by it, a certificate for DatabaseHosts(namespace)
// and localhost, valid for a day: a run's namespace lives for minutes. ECDSA P-256, which
// PostgreSQL 15's OpenSSL and pgx both speak.
func NewDatabaseTLS(namespace string) (DatabaseTLS, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return DatabaseTLS{}, fmt.Errorf("database tls: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "stampede database CA " + namespace},
		NotBefore:             now.Add(-time.Hour), // the nodes' clocks are the host's, but be lenient
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return DatabaseTLS{}, fmt.Errorf("database tls: CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return DatabaseTLS{}, fmt.Errorf("database tls: CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return DatabaseTLS{}, fmt.Errorf("database tls: %w", err)
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: PostgresName},
		DNSNames:     append(DatabaseHosts(namespace), "localhost"),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return DatabaseTLS{}, fmt.Errorf("database tls: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return DatabaseTLS{}, fmt.Errorf("database tls: key: %w", err)
	}
	return DatabaseTLS{
		CACertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // crypto/rand does not fail on Linux
	}
	return n
}

// check verifies that the certificate chains to the CA for PostgreSQL's name and that the key
// is there: a render must not ship a database the service cannot verify.
func (t DatabaseTLS) check() error {
	if len(t.CACertPEM) == 0 || len(t.CertPEM) == 0 || len(t.KeyPEM) == 0 {
		return errors.New("database tls: want a CA certificate, a certificate and a key (manifests.NewDatabaseTLS)")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(t.CACertPEM) {
		return errors.New("database tls: the CA certificate is not PEM")
	}
	block, _ := pem.Decode(t.CertPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("database tls: the certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("database tls: %w", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: PostgresName}); err != nil {
		return fmt.Errorf("database tls: %w", err)
	}
	if !slices.Contains(cert.DNSNames, "toxiproxy") {
		return errors.New("database tls: the certificate does not name toxiproxy, which the service dials when it stands in between")
	}
	if kb, _ := pem.Decode(t.KeyPEM); kb == nil || kb.Type != "PRIVATE KEY" {
		return errors.New("database tls: the key is not a PEM PRIVATE KEY (PKCS#8)")
	}
	return nil
}
