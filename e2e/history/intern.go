package history

// Interner keeps one copy of each distinct string given to it, so that the values that repeat
// over a history share their bytes: every replica answers a customer's requests with the same
// body (one token, the same customer_id), and pods, tenants, phases and errors repeat on
// every request. A million recorded requests hold a few hundred thousand distinct bodies, not
// a million. Its zero value is ready to use; it is not safe for concurrent use.
type Interner struct {
	m map[string]string
}

// String returns the copy of s that in keeps, keeping s itself if it is the first of its value.
func (in *Interner) String(s string) string {
	if s == "" {
		return ""
	}
	if kept, ok := in.m[s]; ok {
		return kept
	}
	if in.m == nil {
		in.m = make(map[string]string)
	}
	in.m[s] = s
	return s
}

// Bytes is String(string(b)), with no copy of b when in keeps its value already.
func (in *Interner) Bytes(b []byte) string {
	if kept, ok := in.m[string(b)]; ok {
		return kept
	}
	return in.String(string(b))
}

// Op replaces every string o carries by the copy that in keeps.
func (in *Interner) Op(o *Op) {
	o.Customer.Tenant = in.String(o.Customer.Tenant)
	o.Customer.EntityKey = in.String(o.Customer.EntityKey)
	o.Customer.Email = in.String(o.Customer.Email)
	o.Customer.Name = in.String(o.Customer.Name)
	o.Phase = Phase(in.String(string(o.Phase)))
	o.KeyTenant = in.String(o.KeyTenant)
	o.Body = in.String(o.Body)
	o.Error = in.String(o.Error)
	o.Pod = in.String(o.Pod)
	o.RetryAfter = in.String(o.RetryAfter)
	o.LocalAddr = in.String(o.LocalAddr)
	o.KeyKind = KeyKind(in.String(string(o.KeyKind)))
	o.ContentType = in.String(o.ContentType)
	o.CacheControl = in.String(o.CacheControl)
	o.WWWAuthenticate = in.String(o.WWWAuthenticate)
}
