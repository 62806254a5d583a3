package check

// Ed25519 verification for the one key that signs every token of a run. A run has a token per
// customer and one key, so the key is decoded once and turned into tables of its multiples, and
// so is the base point: a verification is then 64 table additions instead of crypto/ed25519's
// 253 doublings and ~70 additions, and the batch shares one field inversion across its tokens.
//
// Why a batch here accepts exactly what crypto/ed25519.Verify accepts. Verify (Go 1.26) rejects
// a signature whose length is not 64, whose last byte has any of its top three bits set, or whose
// S is not below the group order L; it decodes A leniently (edwards25519.Point.SetBytes accepts
// non-canonical y and a set sign bit on x = 0), hashes k = SHA-512(R || A as given || M) mod L,
// computes the point [S]B + [k](-A) and accepts iff its canonical encoding equals R's 32 bytes.
// verifyBatch makes the same checks in the same order on the same bytes, decodes A with the same
// SetBytes, and computes the same point: S and k are written exactly, over the integers, as sums
// of signed digits times powers of two (recode), each table entry is m·2^(8j)·P built by the group
// law, and the extended-coordinate addition used is complete on Ed25519 (a = -1 is a square and
// d is not), so every sum is exact for any points, torsion or mixed order included. R is never
// decoded, only compared as bytes with a canonical encoding, as Verify does. So no class of
// input (non-canonical R or A, S >= L, torsion in R or A, a small-order key) is judged apart:
// there is no cofactor and no random linear combination, hence no probability of a wrong
// answer. The random-combination batch equation was not used because it is not exact: without
// the cofactor it misses torsion in R with probability 1/2, with it it accepts torsion in R
// always, and ruling torsion out costs a scalar multiplication per R, as much as it saves.

import (
	"crypto/ed25519"
	"crypto/sha512"
	"sync"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

const (
	// window is the width of the signed digits S and k are written in: 2^(window-1) multiples
	// per digit position, ceil(253/window) positions (a scalar below L < 2^253 ends with a
	// digit below 2^5 that a carry cannot push past 2^7).
	window    = 8
	positions = (253 + window - 1) / window
	multiples = 1 << (window - 1)
)

// niels is a point in affine Niels form: y+x, y-x and 2d·x·y, what a mixed addition reads.
type niels struct{ ypx, ymx, xy2d field.Element }

// baseTable holds m·2^(window·j)·P for every position j and m in 1..multiples.
type baseTable [positions][multiples]niels

// extPoint is a point in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z.
type extPoint struct{ x, y, z, t field.Element }

var (
	// d2 is 2d, d = -121665/121666 the curve constant.
	d2 = func() *field.Element {
		num := new(field.Element).Mult32(new(field.Element).One(), 121665)
		den := new(field.Element).Mult32(new(field.Element).One(), 121666)
		d := new(field.Element).Multiply(num, new(field.Element).Invert(den))
		d.Negate(d)
		return d.Add(d, d)
	}()
	basepointTable = sync.OnceValue(func() *baseTable { return newBaseTable(edwards25519.NewGeneratorPoint()) })
)

// newBaseTable computes the table of p's multiples.
func newBaseTable(p *edwards25519.Point) *baseTable {
	pts := make([]edwards25519.Point, positions*multiples)
	cur := new(edwards25519.Point).Set(p)
	for j := range positions {
		pts[j*multiples].Set(cur)
		for m := 1; m < multiples; m++ {
			pts[j*multiples+m].Add(&pts[j*multiples+m-1], cur)
		}
		for range window {
			cur.Add(cur, cur)
		}
	}
	xs, ys, zs := make([]field.Element, len(pts)), make([]field.Element, len(pts)), make([]field.Element, len(pts))
	for i := range pts {
		x, y, z, _ := pts[i].ExtendedCoordinates()
		xs[i], ys[i], zs[i] = *x, *y, *z
	}
	invertAll(zs, nil)
	t := new(baseTable)
	for i := range pts {
		var x, y field.Element
		x.Multiply(&xs[i], &zs[i])
		y.Multiply(&ys[i], &zs[i])
		n := &t[i/multiples][i%multiples]
		n.ypx.Add(&y, &x)
		n.ymx.Subtract(&y, &x)
		n.xy2d.Multiply(&x, &y)
		n.xy2d.Multiply(&n.xy2d, d2)
	}
	return t
}

// invertAll replaces every element of zs, none of them zero, by its inverse, with one field
// inversion (Montgomery's trick), and returns the scratch it used, prefix grown.
func invertAll(zs, prefix []field.Element) []field.Element {
	if len(zs) == 0 {
		return prefix
	}
	prefix = append(prefix[:0], make([]field.Element, len(zs))...)
	prefix[0] = zs[0]
	for i := 1; i < len(zs); i++ {
		prefix[i].Multiply(&prefix[i-1], &zs[i])
	}
	var inv, zi field.Element
	inv.Invert(&prefix[len(zs)-1])
	for i := len(zs) - 1; i > 0; i-- {
		zi = zs[i]
		zs[i].Multiply(&inv, &prefix[i-1])
		inv.Multiply(&inv, &zi)
	}
	zs[0] = inv
	return prefix
}

// addNiels sets p to p + q, or p - q when neg.
func (p *extPoint) addNiels(q *niels, neg bool) {
	var a, b, c, dd, e, f, g, h field.Element
	ypx, ymx := &q.ypx, &q.ymx
	if neg {
		ypx, ymx = ymx, ypx
	}
	a.Subtract(&p.y, &p.x)
	a.Multiply(&a, ymx)
	b.Add(&p.y, &p.x)
	b.Multiply(&b, ypx)
	c.Multiply(&p.t, &q.xy2d)
	dd.Add(&p.z, &p.z)
	e.Subtract(&b, &a)
	h.Add(&b, &a)
	if neg {
		f.Add(&dd, &c)
		g.Subtract(&dd, &c)
	} else {
		f.Subtract(&dd, &c)
		g.Add(&dd, &c)
	}
	p.x.Multiply(&e, &f)
	p.y.Multiply(&g, &h)
	p.t.Multiply(&e, &h)
	p.z.Multiply(&f, &g)
}

// addMultiple adds s·P to p, t being P's table and s the 32 little-endian bytes of a scalar
// below 2^253.
func (p *extPoint) addMultiple(t *baseTable, s []byte) {
	var digits [positions]int
	recode(s, &digits)
	for j, dj := range digits {
		switch {
		case dj > 0:
			p.addNiels(&t[j][dj-1], false)
		case dj < 0:
			p.addNiels(&t[j][-dj-1], true)
		}
	}
}

// recode writes s, 32 little-endian bytes of an integer below 2^253, as digits d_j in
// [-2^(window-1), 2^(window-1)) with s = Σ d_j·2^(window·j) exactly.
func recode(s []byte, out *[positions]int) {
	carry := 0
	for j := range positions {
		v := carry
		for b := range window {
			bit := j*window + b
			if bit < 256 {
				v += int(s[bit/8]>>(bit%8)&1) << b
			}
		}
		carry = 0
		if v >= multiples {
			v -= 1 << window
			carry = 1
		}
		out[j] = v
	}
}

// edKey verifies Ed25519 signatures by one public key, as crypto/ed25519.Verify does.
type edKey struct {
	raw ed25519.PublicKey
	// minusA is the table of -A; nil when the key does not decode, and then nothing verifies.
	minusA *baseTable
}

// newEdKey decodes pub once and computes its table.
func newEdKey(pub ed25519.PublicKey) *edKey {
	k := &edKey{raw: pub}
	if len(pub) != ed25519.PublicKeySize {
		return k
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return k
	}
	k.minusA = newBaseTable(a.Negate(a))
	return k
}

var (
	edKeysMu sync.Mutex
	// edKeys keeps the last few keys' tables (500 KB each): a process judges one run's key
	// many times, and a test many keys.
	edKeys []*edKey
)

// edKeyFor returns the verifier of pub, computed once for the last few keys.
func edKeyFor(pub ed25519.PublicKey) *edKey {
	edKeysMu.Lock()
	defer edKeysMu.Unlock()
	for i, k := range edKeys {
		if string(k.raw) == string(pub) {
			copy(edKeys[1:i+1], edKeys[:i])
			edKeys[0] = k
			return k
		}
	}
	k := newEdKey(append(ed25519.PublicKey(nil), pub...))
	edKeys = append([]*edKey{k}, edKeys[:min(len(edKeys), 3)]...)
	return k
}

// signedMsg is one signature to verify and the message it signs.
type signedMsg struct {
	msg string
	sig []byte
}

// batchScratch is the memory a batch works in, kept from one batch to the next.
type batchScratch struct {
	ok         []bool
	pts        []extPoint
	zs, prefix []field.Element
	live       []int
	buf        []byte
}

// verifyBatch reports for each item whether crypto/ed25519.Verify accepts it under k, in one
// pass over the batch that shares k's table and one field inversion (see the top of the file
// for why the answers are Verify's).
func (k *edKey) verifyBatch(items []signedMsg) []bool {
	return k.verifyBatchIn(items, new(batchScratch))
}

// verifyBatchIn is verifyBatch working in sc; the answers are valid until sc's next batch.
func (k *edKey) verifyBatchIn(items []signedMsg, sc *batchScratch) []bool {
	sc.ok = append(sc.ok[:0], make([]bool, len(items))...)
	ok := sc.ok
	if k.minusA == nil {
		return ok
	}
	base := basepointTable()
	sc.pts = append(sc.pts[:0], make([]extPoint, len(items))...)
	pts, zs, live := sc.pts, sc.zs[:0], sc.live[:0]
	var (
		kSc  edwards25519.Scalar
		sSc  edwards25519.Scalar
		hram [sha512.Size]byte
	)
	for i, it := range items {
		sig := it.sig
		if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
			continue
		}
		if _, err := sSc.SetCanonicalBytes(sig[32:]); err != nil {
			continue
		}
		sc.buf = append(append(append(sc.buf[:0], sig[:32]...), k.raw...), it.msg...)
		hram = sha512.Sum512(sc.buf)
		if _, err := kSc.SetUniformBytes(hram[:]); err != nil {
			panic("check: a 64-byte hash is not a uniform scalar: " + err.Error())
		}
		p := &pts[i]
		p.y.One()
		p.z.One()
		p.addMultiple(base, sSc.Bytes())
		p.addMultiple(k.minusA, kSc.Bytes())
		zs = append(zs, p.z)
		live = append(live, i)
	}
	sc.zs, sc.live = zs, live
	sc.prefix = invertAll(zs, sc.prefix)
	var x, y field.Element
	for n, i := range live {
		x.Multiply(&pts[i].x, &zs[n])
		y.Multiply(&pts[i].y, &zs[n])
		enc := y.Bytes()
		enc[31] |= byte(x.IsNegative() << 7)
		ok[i] = string(enc) == string(items[i].sig[:32])
	}
	return ok
}

// verifyAll is verifyBatchIn, with every signature the batch rejects verified again on its own
// by crypto/ed25519.Verify, whose answer stands: a rejection names a token no client accepts.
func (k *edKey) verifyAll(items []signedMsg, sc *batchScratch) []bool {
	ok := k.verifyBatchIn(items, sc)
	for i, it := range items {
		if !ok[i] && len(k.raw) == ed25519.PublicKeySize {
			ok[i] = ed25519.Verify(k.raw, []byte(it.msg), it.sig)
		}
	}
	return ok
}
