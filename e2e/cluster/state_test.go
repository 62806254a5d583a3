package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDefaultNames(t *testing.T) {
	p := Params{Mode: ModeKind, ConfigPath: "c", NodeImage: "i", StateDir: t.TempDir()}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.RunID == "" || p.Name != "stampede-"+p.RunID {
		t.Errorf("kind mode: name %q, run %q; want stampede-<run id>", p.Name, p.RunID)
	}
	// kind names the nodes <name>-control-plane, <name>-worker2: they must stay short and valid.
	if !validName.MatchString(p.Name) || len(p.Name+"-control-plane") > 40 {
		t.Errorf("kind mode: name %q is not a short valid kind name", p.Name)
	}
	q := Params{Mode: ModeKind, ConfigPath: "c", NodeImage: "i", StateDir: t.TempDir()}
	_ = q.Validate()
	if q.Name == p.Name {
		t.Errorf("two runs got the same default name %q", p.Name)
	}
	r := Params{Mode: ModeReuse, ConfigPath: "c", NodeImage: "i", StateDir: t.TempDir()}
	if err := r.Validate(); err != nil || r.Name != DefaultName {
		t.Errorf("reuse mode: name %q, %v; want the kept cluster %q", r.Name, err, DefaultName)
	}
	named := Params{Mode: ModeKind, Name: "stampede-h1x", ConfigPath: "c", NodeImage: "i", StateDir: t.TempDir()}
	if err := named.Validate(); err != nil || named.Name != "stampede-h1x" {
		t.Errorf("a named cluster was renamed: %q, %v", named.Name, err)
	}
}

func TestLockContention(t *testing.T) {
	dir := t.TempDir()
	first, err := AcquireLock(dir, "stampede-x", "run1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(dir, "stampede-x", "run2")
	var locked *LockedError
	if !errors.As(err, &locked) || locked.PID != os.Getpid() || locked.RunID != "run1" {
		t.Fatalf("second lock = %v; want a LockedError naming pid %d, run run1", err, os.Getpid())
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("message %q: want one line naming the holder's pid", msg)
	}
	if held, pid := lockHeld(dir, "stampede-x"); !held || pid != os.Getpid() {
		t.Errorf("lockHeld = %t, %d while held", held, pid)
	}
	other, err := AcquireLock(dir, "stampede-y", "run2")
	if err != nil {
		t.Fatalf("another name is not blocked: %v", err)
	}
	other.Release()
	first.Release()
	first.Release() // twice is harmless
	if held, _ := lockHeld(dir, "stampede-x"); held {
		t.Error("lockHeld after Release")
	}
	again, err := AcquireLock(dir, "stampede-x", "run3")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Release()
}

// A lock held by another process blocks too, and is freed when that process dies.
func TestLockHeldByAnotherProcess(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	dir := t.TempDir()
	path := lockPath(dir, "stampede-p")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("pid=1 run=other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// flock(1) passes the locked descriptor to sleep: kill both, as their process group.
	cmd := exec.Command("flock", "-x", path, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }
	t.Cleanup(kill)
	deadline := time.Now().Add(5 * time.Second)
	for {
		held, _ := lockHeld(dir, "stampede-p")
		if held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flock(1) did not take the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := AcquireLock(dir, "stampede-p", "me"); err == nil {
		t.Fatal("acquired a lock another process holds")
	}
	kill()
	// sleep, reparented, exits on its own schedule: wait for the kernel to drop its lock.
	var l *Lock
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if l, err = AcquireLock(dir, "stampede-p", "me"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("lock of a dead process: %v", err)
	}
	l.Release()
}

func TestOwnerRecords(t *testing.T) {
	dir := t.TempDir()
	if o, err := readOwner(dir, "none"); o != nil || err != nil {
		t.Fatalf("missing record = %v, %v", o, err)
	}
	o := newOwner("stampede-a", "a", ModeKind, false)
	if o.PID != os.Getpid() || o.PIDStart == 0 || !o.Alive() {
		t.Errorf("own record %+v: want this process, alive", o)
	}
	if err := writeOwner(dir, o); err != nil {
		t.Fatal(err)
	}
	if err := writeOwner(dir, newOwner("stampede", "b", ModeReuse, true)); err != nil {
		t.Fatal(err)
	}
	got, err := readOwner(dir, "stampede-a")
	if err != nil || got == nil || *got != o {
		t.Fatalf("read %+v, %v; want %+v", got, err, o)
	}
	all, err := readOwners(dir)
	if err != nil || len(all) != 2 {
		t.Fatalf("readOwners = %+v, %v", all, err)
	}
	if err := removeOwner(dir, "stampede-a"); err != nil {
		t.Fatal(err)
	}
	if err := removeOwner(dir, "stampede-a"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
}

func TestProcessAlive(t *testing.T) {
	if !processAlive(os.Getpid(), processStart(os.Getpid())) {
		t.Error("this process is not alive")
	}
	if processAlive(os.Getpid(), processStart(os.Getpid())+1) {
		t.Error("a reused pid (another start time) counts as alive")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	if processAlive(cmd.Process.Pid, 0) {
		t.Errorf("exited pid %d counts as alive", cmd.Process.Pid)
	}
	if processAlive(0, 0) {
		t.Error("pid 0 counts as alive")
	}
	dead := Owner{PID: cmd.Process.Pid}
	if dead.Alive() {
		t.Error("record of an exited process is alive")
	}
	if (Owner{PID: cmd.Process.Pid, Host: "elsewhere"}).Alive() != true {
		t.Error("a record of another host must count as alive: this host cannot tell")
	}
}

func TestParseStatStart(t *testing.T) {
	stat := "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10"
	if got := parseStatStart(stat); got != 987654 {
		t.Errorf("start = %d, want 987654", got)
	}
	if got := parseStatStart("garbage"); got != 0 {
		t.Errorf("start of garbage = %d", got)
	}
}

func TestParseKindContainers(t *testing.T) {
	in := "stampede-ab12-control-plane\trunning\tstampede-ab12\nstampede-ab12-worker\tpaused\tstampede-ab12\n\nkind-control-plane\texited\tkind\n"
	got, err := parseKindContainers(strings.NewReader(in))
	if err != nil || len(got) != 3 || got[1] != (kindContainer{Name: "stampede-ab12-worker", State: "paused", Cluster: "stampede-ab12"}) {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	if _, err := parseKindContainers(strings.NewReader("just-a-name\n")); err == nil {
		t.Error("a malformed line was accepted")
	}
}

func TestPlanGC(t *testing.T) {
	dead := func(o Owner) bool { return false }
	rec := func(name, run string, mode Mode, keep bool) Owner {
		return Owner{Cluster: name, RunID: run, PID: 100, Mode: mode, Keep: keep}
	}
	nodes := func(cluster string, states ...string) []kindContainer {
		var cs []kindContainer
		for i, s := range states {
			cs = append(cs, kindContainer{Name: fmt.Sprintf("%s-n%d", cluster, i), Cluster: cluster, State: s})
		}
		return cs
	}
	concat := func(xs ...[]kindContainer) []kindContainer {
		var out []kindContainer
		for _, x := range xs {
			out = append(out, x...)
		}
		return out
	}
	notHeld := func(string) (bool, int) { return false, 0 }
	cases := []struct {
		name string
		in   gcInput
		p    GCParams
		want []string // "kind cluster target", in order
	}{
		{
			name: "dead kind-mode run: unpause, delete, drop record and lock, then the network",
			in: gcInput{
				containers: nodes("stampede-aa", "running", "paused"), records: []Owner{rec("stampede-aa", "aa", ModeKind, false)},
				lockFiles: []string{"stampede-aa"}, held: notHeld, alive: dead, networkExists: true, networkUsers: 2,
			},
			want: []string{"unpause stampede-aa stampede-aa-n1", "delete-cluster stampede-aa ", "remove-record stampede-aa clusters/stampede-aa.json", "remove-lock stampede-aa locks/stampede-aa.lock", "remove-network  stampede"},
		},
		{
			name: "a cluster without a record is not stampede's",
			in:   gcInput{containers: nodes("kind", "paused"), held: notHeld, alive: dead, networkExists: true, networkUsers: 0},
			want: []string{"skip kind ", "remove-network  stampede"},
		},
		{
			name: "a held lock protects the cluster and the network",
			in: gcInput{
				containers: nodes("stampede-bb", "paused"), records: []Owner{rec("stampede-bb", "bb", ModeKind, false)},
				lockFiles: []string{"stampede-bb"}, held: func(string) (bool, int) { return true, 7 }, alive: dead, networkExists: true, networkUsers: 1,
			},
			want: []string{"skip stampede-bb "},
		},
		{
			name: "a live creator protects the cluster",
			in: gcInput{
				containers: nodes("stampede-cc", "running"), records: []Owner{rec("stampede-cc", "cc", ModeKind, false)},
				held: notHeld, alive: func(Owner) bool { return true },
			},
			want: []string{"skip stampede-cc "},
		},
		{
			name: "a kept cluster stays, its paused node is resumed",
			in: gcInput{
				containers: nodes("stampede", "running", "paused"), records: []Owner{rec("stampede", "dd", ModeReuse, true)},
				held: notHeld, alive: dead, networkExists: true, networkUsers: 2,
			},
			want: []string{"unpause stampede stampede-n1", "skip stampede "},
		},
		{
			name: "kept clusters go too when asked (CI)",
			in: gcInput{
				containers: nodes("stampede-ci", "running"), records: []Owner{rec("stampede-ci", "ee", ModeReuse, true)},
				held: notHeld, alive: dead,
			},
			p:    GCParams{Kept: true},
			want: []string{"delete-cluster stampede-ci ", "remove-record stampede-ci clusters/stampede-ci.json"},
		},
		{
			name: "a record without a cluster is dropped",
			in:   gcInput{records: []Owner{rec("stampede-ff", "ff", ModeKind, false)}, held: notHeld, alive: dead},
			want: []string{"remove-record stampede-ff clusters/stampede-ff.json"},
		},
		{
			name: "one run's gc touches only that run, never the network nor foreign clusters",
			in: gcInput{
				containers: concat(nodes("stampede-g1", "running"), nodes("stampede-g2", "running"), nodes("kind", "running")),
				records:    []Owner{rec("stampede-g1", "g1", ModeKind, false), rec("stampede-g2", "g2", ModeKind, false)},
				lockFiles:  []string{"stampede-g1", "stampede-g2"}, held: notHeld, alive: dead, networkExists: true,
			},
			p:    GCParams{RunID: "g1"},
			want: []string{"delete-cluster stampede-g1 ", "remove-record stampede-g1 clusters/stampede-g1.json", "remove-lock stampede-g1 locks/stampede-g1.lock"},
		},
		{
			name: "the network stays while another container uses it",
			in:   gcInput{held: notHeld, alive: dead, networkExists: true, networkUsers: 1},
			want: nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range planGC(tc.in, tc.p) {
				got = append(got, strings.TrimSpace(string(a.Kind)+" "+a.Cluster+" "+a.Target))
				if a.Reason == "" {
					t.Errorf("action %+v has no reason", a)
				}
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, strings.TrimSpace(w))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestDecideReuse(t *testing.T) {
	broken := errors.New("node container stampede-worker is exited")
	reuseRec := &Owner{Cluster: "stampede", RunID: "r1", Mode: ModeReuse, Keep: true}
	kindRec := &Owner{Cluster: "stampede", RunID: "k1", Mode: ModeKind, Keep: true}
	cases := []struct {
		name     string
		rec      *Owner
		recreate bool
		noCreate bool
		want     reuseAction
		wantMsg  string
	}{
		{"made by reuse mode: recreated", reuseRec, false, false, reuseRecreate, "created by stampede's reuse mode"},
		{"not stampede's: refused with the command to delete it", nil, false, false, reuseRefuse, "stampede-cluster down --name stampede"},
		{"made by a kind-mode run: refused", kindRec, false, false, reuseRefuse, "stampede-cluster down --name stampede"},
		{"asked to recreate", nil, true, false, reuseRecreate, "--fresh"},
		{"attach only: refused", reuseRec, false, true, reuseRefuse, "exited"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			act, err := decideReuse("stampede", broken, tc.rec, tc.recreate, tc.noCreate)
			if act != tc.want || err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("decideReuse = %v, %v; want %v with %q", act, err, tc.want, tc.wantMsg)
			}
		})
	}
}

func TestKindNameTaken(t *testing.T) {
	gone := &Owner{Cluster: "stampede-x", RunID: "x", PID: -1, Mode: ModeKind}
	if err := kindNameTaken("stampede-x", gone); !strings.Contains(err.Error(), "stampede-cluster gc") {
		t.Errorf("leftover of a dead run: %v; want it to point at gc", err)
	}
	for _, rec := range []*Owner{nil, {Cluster: "stampede-x", PID: os.Getpid(), PIDStart: processStart(os.Getpid())}, {Cluster: "stampede-x", PID: -1, Keep: true}} {
		err := kindNameTaken("stampede-x", rec)
		if !strings.Contains(err.Error(), "did not create it") || strings.Contains(err.Error(), "\n") {
			t.Errorf("record %+v: %v; want one line refusing the name", rec, err)
		}
	}
}

func TestNetwork(t *testing.T) {
	args := strings.Join(networkCreateArgs("1450"), " ")
	for _, want := range []string{"--driver bridge", "com.docker.network.bridge.name=stampede0", "enable_ip_masquerade=false", "--label io.stampede.network=true", "mtu=1450"} {
		if !strings.Contains(args, want) {
			t.Errorf("docker %s: missing %q", args, want)
		}
	}
	if !strings.HasSuffix(args, " "+NetworkName) || strings.Contains(strings.Join(networkCreateArgs(""), " "), "mtu") {
		t.Errorf("docker %s: want the network name last, no mtu when unknown", args)
	}
	ok := networkInfo{Name: NetworkName, Driver: "bridge", Options: map[string]string{"com.docker.network.bridge.name": BridgeName}}
	if err := checkNetwork(ok); err != nil {
		t.Errorf("our network refused: %v", err)
	}
	kinds := networkInfo{Name: NetworkName, Driver: "bridge", Options: map[string]string{}}
	if err := checkNetwork(kinds); err == nil || !strings.Contains(err.Error(), BridgeName) {
		t.Errorf("a network without our bridge name accepted: %v", err)
	}
}

// The host's egress guard matches stampede's bridge by name (-i stampede0). The scripts are
// another part's; once they name a stampede bridge, it must be BridgeName.
func TestBridgeNameMatchesHostScripts(t *testing.T) {
	re := regexp.MustCompile(`(?:-i\s+"?|STAMPEDE_BRIDGE:-)(stampede[0-9a-z]*)`)
	found := false
	for _, s := range []string{"egress-guard.sh", "host-setup.sh", "lib.sh"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "scripts", s))
		if err != nil {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found = true
			if m[1] != BridgeName {
				t.Errorf("scripts/%s matches bridge %q, cluster.BridgeName is %q", s, m[1], BridgeName)
			}
		}
	}
	if !found {
		t.Skipf("the host scripts do not match a stampede bridge yet; they must use -i %s", BridgeName)
	}
}

func TestDownAction(t *testing.T) {
	cases := []struct {
		name                         string
		mode                         Mode
		ours, reused, keep, creating bool
		want                         downKind
	}{
		{"kind run's own cluster is deleted", ModeKind, true, false, false, false, downDelete},
		{"kept with KEEP=true", ModeKind, true, false, true, false, downKeep},
		{"a name kind mode refused is left alone", ModeKind, false, false, false, false, downNothing},
		{"a create still running is cut short", ModeKind, true, false, false, true, downAbortCreate},
		{"reuse mode keeps what it created", ModeReuse, true, false, false, false, downKeep},
		{"reuse mode keeps what it reused", ModeReuse, false, true, false, false, downKeep},
		{"reuse mode leaves a refused cluster alone", ModeReuse, false, false, false, false, downNothing},
		{"existing mode never touches the cluster", ModeExisting, true, true, false, true, downNothing},
	}
	for _, tc := range cases {
		if got := downAction(tc.mode, tc.ours, tc.reused, tc.keep, tc.creating); got != tc.want {
			t.Errorf("%s: downAction = %v, want %v", tc.name, got, tc.want)
		}
	}
}
