// Package attack is traffic from inside the cluster: the plan that every attacker pod of one
// run is given (where, whom, how hard, from which instant, which share of each burst), what a
// pod prints (its history, then a trailer), and how the suite merges the pods' histories onto
// its spec's time base and request numbering. The pods run e2e/cmd/stampede-attacker; the
// Kubernetes Job that starts them is e2e/attack/attackjob's. This package imports no
// Kubernetes API, so that the attacker binary stays small.
package attack

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// IndexEnv is the variable a Kubernetes Job in Indexed completion mode sets to each pod's
// completion index: the pod's shard, unless -index says otherwise.
const IndexEnv = "JOB_COMPLETION_INDEX"

// DefaultMaxLate is how long after the agreed start a pod may still begin: later than that it
// sends nothing and fails, since its share of the first bursts would no longer leave with the
// others'.
const DefaultMaxLate = time.Second

// Plan is what one attacker pod is told. Every pod of a run gets the same plan but Shard.Index.
type Plan struct {
	// URL is the target as in-cluster clients reach it: its ClusterIP Service, e.g.
	// http://app.<namespace>.svc:8080.
	URL string
	// Request is the target's create request (traffic.RequestOf): the pods send it as it says,
	// knowing nothing of the target's API.
	Request request.Template
	// Customers are registered by Burst simultaneous requests each, one burst every Gap.
	Customers []history.Customer
	Burst     int
	Gap       time.Duration
	// Timeout bounds each request (traffic.DefaultTimeout if zero).
	Timeout time.Duration
	// Retry is how each pod retries the failures of its own share.
	Retry traffic.RetryParams
	// Start is the agreed instant of the first burst, on the wall clock that the nodes share;
	// burst j leaves every pod at Start + j*Gap, and every pod's history counts from Start.
	Start time.Time
	// MaxLate is how late after Start a pod may begin (DefaultMaxLate if zero).
	MaxLate time.Duration
	// Shard says which requests of each burst this pod sends: those whose sequence number s
	// has s % Shard.Count == Shard.Index.
	Shard traffic.Shard
	// KeysFile is where the pod reads the tenants' API keys (ParseKeys' format), mounted from
	// a Secret: the keys themselves never go into the arguments. Empty: no request carries a key.
	KeysFile string `json:"-"`
	// Keys are the keys read from KeysFile (ParseArgs reads them); Args and EncodePlan leave
	// them out.
	Keys map[string]string `json:"-"`
	// Foreign picks the requests that carry another tenant's key (traffic.Params.Foreign).
	Foreign traffic.ForeignKeys
	// Wrong picks the requests that carry no key, a malformed, an unknown or another tenant's
	// key among their customers' own (traffic.Params.Wrong).
	Wrong traffic.WrongKeys
}

// Validate says in one line what is wrong with p.
func (p Plan) Validate() error {
	var errs []error
	if !strings.HasPrefix(p.URL, "http://") && !strings.HasPrefix(p.URL, "https://") {
		errs = append(errs, fmt.Errorf("url %q: want http://host:port", p.URL))
	}
	if err := p.Request.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(p.Customers) == 0 {
		errs = append(errs, errors.New("no customers"))
	}
	if p.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d: want at least 1", p.Burst))
	}
	if p.Gap <= 0 {
		errs = append(errs, fmt.Errorf("gap %s: want more than 0", p.Gap))
	}
	if p.Start.IsZero() {
		errs = append(errs, errors.New("no start instant"))
	}
	if p.Shard.Count < 1 || p.Shard.Index < 0 || p.Shard.Index >= p.Shard.Count {
		errs = append(errs, fmt.Errorf("shard %d of %d: want 0 <= index < shards", p.Shard.Index, p.Shard.Count))
	}
	if err := p.Foreign.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.Foreign.Customers > 0 && p.KeysFile == "" && len(p.Keys) == 0 {
		errs = append(errs, errors.New("foreign keys asked for, but no API keys"))
	}
	if err := p.Wrong.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.Wrong.Customers > 0 && p.KeysFile == "" && len(p.Keys) == 0 {
		errs = append(errs, errors.New("wrong keys asked for, but no API keys"))
	}
	if len(p.Keys) > 0 {
		// Here, not at the first request: a pod given the wrong keys file is a bad plan.
		var missing []string
		for _, c := range p.Customers {
			if _, ok := p.Keys[c.Tenant]; !ok && !slices.Contains(missing, c.Tenant) {
				missing = append(missing, c.Tenant)
			}
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("tenants %v of the customers have no API key", missing))
		}
	}
	return errors.Join(errs...)
}

// Args are the attacker command's arguments for p, all but the shard's index, which each pod
// of an Indexed Job takes from IndexEnv. Customers that traffic.Customers derives from a seed
// are passed as the seed; any others as a JSON list.
func (p Plan) Args() []string {
	args := []string{
		"-url=" + p.URL,
		"-burst=" + strconv.Itoa(p.Burst),
		"-gap=" + p.Gap.String(),
		"-start=" + strconv.FormatInt(p.Start.UnixNano(), 10),
		"-shards=" + strconv.Itoa(p.Shard.Count),
	}
	args = append(args, customerArgs(p.Customers)...)
	args = append(args, "-request="+string(p.requestJSON()))
	if p.Timeout > 0 {
		args = append(args, "-timeout="+p.Timeout.String())
	}
	if p.MaxLate > 0 {
		args = append(args, "-max-late="+p.MaxLate.String())
	}
	args = append(args, p.keyArgs()...)
	return append(args, retryArgs(p.Retry)...)
}

// customerArgs pass cs as the seed that traffic.Customers derives them from when there is
// one, three numbers instead of a list that a large run would make too long an argument.
func customerArgs(cs []history.Customer) []string {
	if seed, tenants, ok := CustomerSeed(cs); ok {
		return []string{"-seed=" + strconv.FormatUint(seed, 10), "-customers=" + strconv.Itoa(len(cs)),
			"-tenants=" + strconv.Itoa(tenants)}
	}
	list, err := json.Marshal(cs)
	if err != nil {
		panic(fmt.Sprintf("marshal customers: %v", err)) // plain strings and ints always marshal
	}
	return []string{"-customer-list=" + string(list)}
}

// keyArgs are the arguments of p's keys: where the pod reads them, and which requests carry
// a foreign or a wrong one. The keys themselves never go into the arguments.
func (p Plan) keyArgs() []string {
	var args []string
	if p.KeysFile != "" {
		args = append(args, "-api-keys="+p.KeysFile)
	}
	if p.Foreign.Customers > 0 {
		args = append(args, "-foreign-customers="+strconv.FormatFloat(p.Foreign.Customers, 'g', -1, 64))
	}
	if p.Foreign.Every > 0 {
		args = append(args, "-foreign-every="+strconv.Itoa(p.Foreign.Every))
	}
	if p.Wrong.Customers > 0 {
		args = append(args, "-wrong-customers="+strconv.FormatFloat(p.Wrong.Customers, 'g', -1, 64))
	}
	if p.Wrong.Every > 0 {
		args = append(args, "-wrong-every="+strconv.Itoa(p.Wrong.Every))
	}
	return args
}

// retryArgs are the arguments of r, each left out at its zero value (the attacker's default).
func retryArgs(r traffic.RetryParams) []string {
	var args []string
	if r.MaxAttempts > 0 {
		args = append(args, "-retry-attempts="+strconv.Itoa(r.MaxAttempts))
	}
	if r.MaxWait > 0 {
		args = append(args, "-retry-max-wait="+r.MaxWait.String())
	}
	if r.Backoff > 0 {
		args = append(args, "-retry-backoff="+r.Backoff.String())
	}
	if r.Concurrency > 0 {
		args = append(args, "-retry-concurrency="+strconv.Itoa(r.Concurrency))
	}
	if len(r.Statuses) > 0 {
		codes := make([]string, len(r.Statuses))
		for i, s := range r.Statuses {
			codes[i] = strconv.Itoa(s)
		}
		args = append(args, "-retry-statuses="+strings.Join(codes, ","))
	}
	if r.NoRetryOnError {
		args = append(args, "-retry-no-error")
	}
	return args
}

// requestJSON is p.Request as -request carries it.
func (p Plan) requestJSON() []byte {
	b, err := json.Marshal(p.Request)
	if err != nil {
		panic(fmt.Sprintf("marshal the request: %v", err)) // strings and a bool always marshal
	}
	return b
}

// ParseArgs reads a plan from the attacker command's arguments, and the API keys from the file
// -api-keys names; getenv supplies IndexEnv when -index is not given.
func ParseArgs(args []string, getenv func(string) string, usage io.Writer) (Plan, error) {
	var (
		p   Plan
		raw rawArgs
		fs  = planFlags(&p, &raw, usage)
	)
	if err := fs.Parse(args); err != nil {
		return Plan{}, err
	}
	if fs.NArg() > 0 {
		return Plan{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	if p.Shard.Index, err = shardIndex(raw.index, set["index"], getenv); err != nil {
		return Plan{}, err
	}
	if raw.start != 0 {
		p.Start = time.Unix(0, raw.start)
	}
	if p.Customers, err = raw.customers(set["seed"], set["customer-list"]); err != nil {
		return Plan{}, err
	}
	if raw.template != "" {
		if err := decodeStrict(raw.template, &p.Request); err != nil {
			return Plan{}, fmt.Errorf("-request: %w", err)
		}
	}
	if p.Keys, err = readKeys(p.KeysFile); err != nil {
		return Plan{}, err
	}
	if p.Retry.Statuses, err = parseStatuses(raw.statuses); err != nil {
		return Plan{}, err
	}
	return p, p.Validate()
}

// rawArgs hold the arguments that become a plan's fields only once read together: the start
// as nanoseconds, the shard's index (or IndexEnv), the customers as a seed or a list, the
// request and the retried statuses as text.
type rawArgs struct {
	start                    int64
	seed                     uint64
	count, tenants, index    int
	list, statuses, template string
}

// planFlags defines the attacker command's flags: onto p's fields where a flag is one, onto
// raw's otherwise.
func planFlags(p *Plan, raw *rawArgs, usage io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("stampede-attacker", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&p.URL, "url", "", "the target, e.g. http://app.<namespace>.svc:8080")
	fs.StringVar(&raw.template, "request", "", "the create request as JSON (request.Template): method, path, headers, auth, body")
	fs.IntVar(&p.Burst, "burst", 0, "simultaneous requests per customer, from all pods together")
	fs.DurationVar(&p.Gap, "gap", traffic.DefaultGap, "time between the starts of two customers' bursts")
	fs.DurationVar(&p.Timeout, "timeout", 0, "bound of each request (default 10s)")
	fs.Int64Var(&raw.start, "start", 0, "the agreed start instant, Unix nanoseconds")
	fs.DurationVar(&p.MaxLate, "max-late", 0, "how late after the start this pod may begin (default 1s)")
	fs.IntVar(&p.Shard.Count, "shards", 1, "how many pods share every burst")
	fs.IntVar(&raw.index, "index", 0, "this pod's shard, 0 to shards-1 (default $"+IndexEnv+")")
	fs.Uint64Var(&raw.seed, "seed", 0, "derive the customers from this seed (traffic.Customers)")
	fs.IntVar(&raw.count, "customers", 0, "number of customers derived from -seed")
	fs.IntVar(&raw.tenants, "tenants", 0, "tenants the derived customers are spread over")
	fs.StringVar(&raw.list, "customer-list", "", "the customers as a JSON list, instead of -seed")
	fs.IntVar(&p.Retry.MaxAttempts, "retry-attempts", 0, "retries per failed request (0: no retry phase)")
	fs.DurationVar(&p.Retry.MaxWait, "retry-max-wait", 0, "cap of a Retry-After wait")
	fs.DurationVar(&p.Retry.Backoff, "retry-backoff", 0, "wait before a retry without Retry-After")
	fs.IntVar(&p.Retry.Concurrency, "retry-concurrency", 0, "retry requests in flight (every chain waits at once)")
	fs.StringVar(&raw.statuses, "retry-statuses", "", "comma-separated statuses to retry (default 409,503)")
	fs.BoolVar(&p.Retry.NoRetryOnError, "retry-no-error", false, "do not retry transport errors")
	fs.StringVar(&p.KeysFile, "api-keys", "", "file of the tenants' keys, lines '<tenant> <key>' (default: send no key)")
	fs.Float64Var(&p.Foreign.Customers, "foreign-customers", 0, "fraction of customers whose requests carry another tenant's key")
	fs.IntVar(&p.Foreign.Every, "foreign-every", 0, "of those customers' requests, the seqs that are multiples of this (default all)")
	fs.Float64Var(&p.Wrong.Customers, "wrong-customers", 0, "fraction of customers some of whose requests carry no key, a malformed, an unknown or another tenant's key")
	fs.IntVar(&p.Wrong.Every, "wrong-every", 0, "of those customers' requests, the seqs one less than a multiple of this (default all)")
	return fs
}

// shardIndex is -index when given, else IndexEnv's value: an Indexed Job sets it in each pod.
func shardIndex(index int, set bool, getenv func(string) string) (int, error) {
	if set {
		return index, nil
	}
	v := getenv(IndexEnv)
	if v == "" {
		return 0, fmt.Errorf("no -index and no $%s: which shard is this?", IndexEnv)
	}
	index, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("$%s=%q: %w", IndexEnv, v, err)
	}
	return index, nil
}

// customers are the plan's customers, derived from -seed or read from -customer-list; nil
// when neither is given, which Validate refuses.
func (raw rawArgs) customers(seedSet, listSet bool) ([]history.Customer, error) {
	switch {
	case seedSet && listSet:
		return nil, errors.New("-seed and -customer-list: give one")
	case seedSet:
		if raw.count < 1 || raw.tenants < 1 {
			return nil, fmt.Errorf("-seed needs -customers and -tenants of at least 1 (got %d, %d)", raw.count, raw.tenants)
		}
		if raw.tenants > traffic.MaxTenants {
			return nil, fmt.Errorf("-tenants %d: at most %d tenants have API keys", raw.tenants, traffic.MaxTenants)
		}
		return traffic.Customers(raw.seed, raw.count, raw.tenants), nil
	case listSet:
		var cs []history.Customer
		if err := decodeStrict(raw.list, &cs); err != nil {
			return nil, fmt.Errorf("-customer-list: %w", err)
		}
		return cs, nil
	}
	return nil, nil
}

// decodeStrict reads the JSON s into v, refusing fields v does not have: an attacker older
// than the suite must fail on what it cannot send, not drop it.
func decodeStrict(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// readKeys reads the tenants' keys from file (ParseKeys' format); none when file is empty.
func readKeys(file string) (map[string]string, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("-api-keys: %w", err)
	}
	keys, err := ParseKeys(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("-api-keys %s: %w", file, err)
	}
	return keys, nil
}

// parseStatuses reads -retry-statuses, a comma-separated list of HTTP statuses; nil when empty,
// so that the retry's default applies.
func parseStatuses(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var codes []int
	for _, f := range strings.Split(s, ",") {
		code, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || code < 100 || code > 599 {
			return nil, fmt.Errorf("-retry-statuses: %q is not an HTTP status", f)
		}
		codes = append(codes, code)
	}
	return codes, nil
}

// CustomerSeed finds the seed and tenant count that traffic.Customers derives cs from, if it
// does: then a plan passes three numbers instead of the list.
func CustomerSeed(cs []history.Customer) (seed uint64, tenants int, ok bool) {
	if len(cs) == 0 {
		return 0, 0, false
	}
	rest, found := strings.CutPrefix(cs[0].EntityKey, "c-")
	if !found {
		return 0, 0, false
	}
	rest, found = strings.CutSuffix(rest, "-0")
	if !found {
		return 0, 0, false
	}
	seed, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	var ms []string
	for _, c := range cs {
		if !slices.Contains(ms, c.Tenant) {
			ms = append(ms, c.Tenant)
		}
	}
	tenants = len(ms)
	return seed, tenants, reflect.DeepEqual(traffic.Customers(seed, len(cs), tenants), cs)
}
