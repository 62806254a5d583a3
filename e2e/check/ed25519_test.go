package check

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"filippo.io/edwards25519"
)

// edCase is one signature of a crafted or random key, with what it should show.
type edCase struct {
	name string
	pub  ed25519.PublicKey
	msg  string
	sig  []byte
}

// scalarOf returns the scalar n.
func scalarOf(n uint64) *edwards25519.Scalar {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(n >> (8 * i))
	}
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(b[:])
	if err != nil {
		panic(err)
	}
	return s
}

// torsion8 returns a point of order 8: the torsion part of a point decoded from random bytes.
func torsion8(rng *rand.Rand) *edwards25519.Point {
	inv8 := new(edwards25519.Scalar).Invert(scalarOf(8))
	for {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		p, err := new(edwards25519.Point).SetBytes(b[:])
		if err != nil {
			continue
		}
		prime := new(edwards25519.Point).ScalarMult(inv8, new(edwards25519.Point).MultByCofactor(p))
		t := new(edwards25519.Point).Subtract(p, prime)
		t4 := new(edwards25519.Point).Add(t, t)
		t4.Add(t4, t4)
		if t4.Equal(edwards25519.NewIdentityPoint()) == 0 {
			return t
		}
	}
}

// randScalar returns a scalar drawn from rng.
func randScalar(rng *rand.Rand) *edwards25519.Scalar {
	var b [64]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	s, err := new(edwards25519.Scalar).SetUniformBytes(b[:])
	if err != nil {
		panic(err)
	}
	return s
}

// signRaw signs msg with nonce r and secret scalar a under the key encoded as pubBytes (which
// need not be [a]B: crafted keys carry torsion), with R = [r]B + rTorsion.
func signRaw(pubBytes []byte, a, r *edwards25519.Scalar, rTorsion *edwards25519.Point, msg string) []byte {
	R := new(edwards25519.Point).ScalarBaseMult(r)
	if rTorsion != nil {
		R.Add(R, rTorsion)
	}
	rb := R.Bytes()
	h := sha512.Sum512(append(append(append([]byte(nil), rb...), pubBytes...), msg...))
	k, err := new(edwards25519.Scalar).SetUniformBytes(h[:])
	if err != nil {
		panic(err)
	}
	S := new(edwards25519.Scalar).MultiplyAdd(k, a, r)
	return append(rb, S.Bytes()...)
}

// addL returns the 32-byte little-endian encoding of s + L, a non-canonical S.
func addL(s []byte) []byte {
	l, _ := hex.DecodeString("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	out := make([]byte, 32)
	carry := 0
	for i := range 32 {
		v := int(s[i]) + int(l[i]) + carry
		out[i], carry = byte(v), v>>8
	}
	return out
}

// adversarialCases are signatures crafted where batch equations and crypto/ed25519.Verify are
// known to differ: torsion in R, S >= L, small-order and mixed-order keys, non-canonical
// encodings of R and A. Each says in its name what Verify does with it; the tests compare with
// Verify itself, not with the name.
func adversarialCases(t testing.TB) []edCase {
	rng := rand.New(rand.NewPCG(1, 2))
	seed := make([]byte, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	h := sha512.Sum512(seed)
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	t8 := torsion8(rng)
	t2 := new(edwards25519.Point).Add(t8, t8)
	t2.Add(t2, t2)
	identity := edwards25519.NewIdentityPoint().Bytes()
	var cases []edCase
	add := func(name string, pub []byte, msg string, sig []byte) {
		cases = append(cases, edCase{name, pub, msg, sig})
	}

	good := ed25519.Sign(priv, []byte("m"))
	add("valid", pub, "m", good)
	add("other message", pub, "n", good)
	add("torsion of order 8 added to R (cofactored equations accept it)", pub, "m", signRaw(pub, a, randScalar(rng), t8, "m"))
	add("torsion of order 2 added to R (cofactorless batches accept it half the time)", pub, "m", signRaw(pub, a, randScalar(rng), t2, "m"))
	add("S + L, non-canonical", pub, "m", append(good[:32:32], addL(good[32:])...))
	add("S with its top bit set", pub, "m", append(good[:63:63], good[63]|0x80))
	add("S = L", pub, "m", append(good[:32:32], addL(make([]byte, 32))...))

	// A key of small order: [k](-A) depends on k mod 8 only, so for 1 in 8 messages the
	// signature R = [S]B - [k mod 8]A verifies (Verify accepts it; a cofactored check accepts
	// every S with R = [S]B).
	tb := t8.Bytes()
	S := randScalar(rng)
	for i, found := 0, 0; found < 2; i++ {
		msg := fmt.Sprintf("small-order key %d", i)
		c := i % 8
		R := new(edwards25519.Point).ScalarBaseMult(S)
		R.Subtract(R, new(edwards25519.Point).ScalarMult(scalarOf(uint64(c)), t8))
		sig := append(R.Bytes(), S.Bytes()...)
		hh := sha512.Sum512(append(append(append([]byte(nil), sig[:32]...), tb...), msg...))
		k, _ := new(edwards25519.Scalar).SetUniformBytes(hh[:])
		kb := k.Bytes()
		if int(kb[0]%8) == c {
			found++
			add(fmt.Sprintf("key of order 8, R = [S]B - [k]A (%s)", msg), tb, msg, sig)
		} else if i < 3 {
			add(fmt.Sprintf("key of order 8, R = [S]B - [%d]A, k mod 8 = %d (%s)", c, kb[0]%8, msg), tb, msg, sig)
		}
	}
	add("identity key, R = [S]B", identity, "m", append(new(edwards25519.Point).ScalarBaseMult(S).Bytes(), S.Bytes()...))
	// The identity encoded with y = p + 1, and with the sign bit of x = 0 set: SetBytes accepts
	// both, and k hashes the bytes as given.
	nonCanonicalID, _ := hex.DecodeString("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	negZeroID := append(identity[:31:31], identity[31]|0x80)
	for name, key := range map[string][]byte{"non-canonical identity key (y = p+1)": nonCanonicalID, "identity key with the sign bit of x = 0 set": negZeroID} {
		add(name+", R = [S]B", key, "m", append(new(edwards25519.Point).ScalarBaseMult(S).Bytes(), S.Bytes()...))
	}
	// R as the identity: S = 0 under the identity key gives [0]B = identity; its canonical
	// encoding verifies, the non-canonical ones do not.
	zero := make([]byte, 32)
	add("identity key, S = 0, R the identity", identity, "m", append(append([]byte(nil), identity...), zero...))
	add("identity key, S = 0, R the identity as y = p+1", identity, "m", append(append([]byte(nil), nonCanonicalID...), zero...))
	add("identity key, S = 0, R the identity with the sign bit set", identity, "m", append(append([]byte(nil), negZeroID...), zero...))

	// A mixed-order key A = [a]B + T: an honest signature verifies iff [k]T is the identity.
	mixed := new(edwards25519.Point).ScalarBaseMult(a)
	mixed.Add(mixed, t8)
	mb := mixed.Bytes()
	for i := range 16 {
		msg := fmt.Sprintf("mixed-order key %d", i)
		add("mixed-order key, honest signature ("+msg+")", mb, msg, signRaw(mb, a, randScalar(rng), nil, msg))
	}
	notOnCurve, _ := hex.DecodeString("0200000000000000000000000000000000000000000000000000000000000000")
	add("key not on the curve", notOnCurve, "m", good)
	add("signature too short", pub, "m", good[:63])
	return cases
}

// TestVerifyBatchAdversarial: the batch accepts exactly the crafted signatures that
// crypto/ed25519.Verify accepts, alone and all in one batch per key, and both kinds occur.
func TestVerifyBatchAdversarial(t *testing.T) {
	cases := adversarialCases(t)
	byKey := map[string][]int{}
	accepted := 0
	for i, c := range cases {
		want := ed25519.Verify(c.pub, []byte(c.msg), c.sig)
		if want {
			accepted++
		}
		t.Logf("ed25519.Verify %-5t %s", want, c.name)
		if got := newEdKey(c.pub).verifyBatch([]signedMsg{{c.msg, c.sig}})[0]; got != want {
			t.Errorf("%s: batch of one says %t, ed25519.Verify %t", c.name, got, want)
		}
		byKey[string(c.pub)] = append(byKey[string(c.pub)], i)
	}
	for key, idx := range byKey {
		items := make([]signedMsg, len(idx))
		for n, i := range idx {
			items[n] = signedMsg{cases[i].msg, cases[i].sig}
		}
		for n, got := range newEdKey(ed25519.PublicKey(key)).verifyBatch(items) {
			c := cases[idx[n]]
			if want := ed25519.Verify(c.pub, []byte(c.msg), c.sig); got != want {
				t.Errorf("%s: in a batch of %d, batch says %t, ed25519.Verify %t", c.name, len(items), got, want)
			}
		}
	}
	if accepted < 5 || accepted > len(cases)-10 {
		t.Fatalf("ed25519.Verify accepts %d of %d crafted cases: the cases do not test both answers", accepted, len(cases))
	}
}

// TestVerifyBatchBreaks: verifyBatch is the check under test, not its fallback: a table built
// from another key, or a batch that skips the final comparison, gives wrong answers that the
// comparison with ed25519.Verify catches.
func TestVerifyBatchBreaks(t *testing.T) {
	c := adversarialCases(t)[0]
	if !ed25519.Verify(c.pub, []byte(c.msg), c.sig) {
		t.Fatal("the first crafted case is not valid")
	}
	wrong := newEdKey(c.pub)
	wrong.minusA = newEdKey(otherKey.Public().(ed25519.PublicKey)).minusA
	if wrong.verifyBatch([]signedMsg{{c.msg, c.sig}})[0] {
		t.Fatal("a batch over the wrong key's table accepts the signature")
	}
	if !wrong.verifyAll([]signedMsg{{c.msg, c.sig}}, new(batchScratch))[0] {
		t.Fatal("verifyAll does not fall back to ed25519.Verify when the batch rejects")
	}
}

// FuzzVerifyBatch compares verifyBatch with crypto/ed25519.Verify over random mixes of valid
// and broken signatures in one batch: flipped bits in R, S or the message, S + L, torsion added
// to R, and keys of small or mixed order.
func FuzzVerifyBatch(f *testing.F) {
	for i := range uint64(16) {
		f.Add(i, uint8(24))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		rng := rand.New(rand.NewPCG(seed, 7))
		t8 := torsion8(rng)
		a := randScalar(rng)
		A := new(edwards25519.Point).ScalarBaseMult(a)
		switch rng.IntN(4) {
		case 0:
			A.Add(A, t8)
		case 1:
			A.Set(t8)
		}
		pub := ed25519.PublicKey(A.Bytes())
		items := make([]signedMsg, int(n)%64+1)
		for i := range items {
			msg := fmt.Sprintf("token %d of %d", i, seed)
			var tors *edwards25519.Point
			if rng.IntN(8) == 0 {
				tors = t8
			}
			sig := signRaw(pub, a, randScalar(rng), tors, msg)
			switch rng.IntN(8) {
			case 0:
				sig[rng.IntN(64)] ^= 1 << rng.IntN(8)
			case 1:
				msg += "x"
			case 2:
				if s := addL(sig[32:]); s[31]&224 == 0 {
					copy(sig[32:], s)
				}
			}
			items[i] = signedMsg{msg, sig}
		}
		// A smaller batch first in the same scratch, as a worker's batches follow each other.
		var sc batchScratch
		key := newEdKey(pub)
		key.verifyBatchIn(items[len(items)/2:], &sc)
		for i, got := range key.verifyBatchIn(items, &sc) {
			if want := ed25519.Verify(pub, []byte(items[i].msg), items[i].sig); got != want {
				t.Errorf("item %d of %d: batch says %t, ed25519.Verify %t", i, len(items), got, want)
			}
		}
	})
}

// TestRecode: the signed digits add up to the scalar exactly, for the extremes and at random.
func TestRecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	l1 := addL(make([]byte, 32))
	l1[0]-- // L - 1
	scalars := [][]byte{make([]byte, 32), l1, randScalar(rng).Bytes()}
	for range 100 {
		scalars = append(scalars, randScalar(rng).Bytes())
	}
	for _, s := range scalars {
		var d [positions]int
		recode(s, &d)
		be := slices.Clone(s)
		slices.Reverse(be)
		want := new(big.Int).SetBytes(be)
		sum := new(big.Int)
		for j := positions - 1; j >= 0; j-- {
			sum.Lsh(sum, window)
			sum.Add(sum, big.NewInt(int64(d[j])))
		}
		if sum.Cmp(want) != 0 {
			t.Errorf("%x recodes to %v, which sums to %x", s, d, sum)
		}
		for j, v := range d {
			if v < -multiples || v >= multiples {
				t.Errorf("%x: digit %d is %d, out of range", s, j, v)
			}
		}
	}
}
