package framework

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/stampede-e2e/stampede/e2e/target"
	"github.com/stampede-e2e/stampede/manifests"
)

// What the suite reads of the target's deploy section: the names it deploys, waits for and
// reaches. Everything here comes from Config.Target, which Validate loaded.

// workload is the target's workload: what is rolled out, scaled and whose pods are judged.
func (c *Config) workload() target.Workload { return c.Target.Deploy.Workload }

// podHeader is the header naming the pod that served an answer (observability.podHeader), ""
// when the target names none.
func (c *Config) podHeader() string {
	if c.Target == nil || c.Target.Observability == nil {
		return ""
	}
	return c.Target.Observability.PodHeader
}

// serviceName is the target's Service: what the traffic reaches and the node port is on.
func (c *Config) serviceName() string { return c.Target.Deploy.Service.Name }

// imageName is the target's image as its manifests name it, which Image replaces.
func (c *Config) imageName() string { return c.Target.Deploy.Images[0].Name }

// buildName is what scripts/build-image.sh calls the target's image, for a target whose build
// recipe is that script with one argument; "" for any other, whose image must be given.
func (c *Config) buildName() string {
	b := c.Target.Deploy.Images[0].Build
	if b == nil || filepath.Base(b.Script) != "build-image.sh" || len(b.Args) != 1 {
		return ""
	}
	return b.Args[0]
}

// recipe is the build script of the target's image and its args, the script's path resolved
// against the target file; "" for an image without one (or built from a Dockerfile), which
// must be given.
func (c *Config) recipe() (script string, args []string) {
	b := c.Target.Deploy.Images[0].Build
	if b == nil || b.Script == "" {
		return "", nil
	}
	return c.Target.Resolve(b.Script), b.Args
}

// suiteImageNames are the images scripts/build-image.sh builds for a run: the suite's own, and
// first the target's when that script is its recipe (for the bundled target, what "all" names).
func (c *Config) suiteImageNames() []string {
	names := []string{"postgres", "toxiproxy"}
	if n := c.buildName(); n != "" {
		names = append([]string{n}, names...)
	}
	return names
}

// BuildName is what scripts/build-image.sh calls the target's image, "" when another recipe
// builds it: the spec files tell by it whether the target's image has a self-test build.
func (c *Config) BuildName() string { return c.buildName() }

// PodSelector selects the target's pods: its Service's selector.
func (d *Deployment) PodSelector() string { return d.pods }

// clusterURL is the target's Service as clients inside the cluster reach it.
func (d *Deployment) clusterURL() string {
	svc := d.Env.Config.Target.Deploy.Service
	return manifests.ClusterURL(svc.Name, d.Namespace, svc.Port)
}

// verifierSettings are the credential verifier's settings as a deployment configures the
// target: each setting's default, or the value the mode or the spec's extra settings give its
// variable.
type verifierSettings struct {
	Issuer, Audience string
	TTL              time.Duration
}

// verifierOf reads t's verifier settings for mode, with extra settings config over the mode's.
func verifierOf(t *target.Target, mode string, config map[string]string) (verifierSettings, error) {
	v := t.Response.Verifier
	if v == nil {
		return verifierSettings{}, nil
	}
	m, _ := t.ModeNamed(mode)
	value := func(s *target.Setting) string {
		if s == nil {
			return ""
		}
		if s.Env != "" {
			if x, ok := config[s.Env]; ok {
				return x
			}
			if x, ok := m.Env[s.Env]; ok {
				return x
			}
			if m.ConfigMap != nil {
				if x, ok := m.ConfigMap.Data[s.Env]; ok {
					return x
				}
			}
		}
		return s.Default
	}
	out := verifierSettings{Issuer: value(v.Issuer), Audience: value(v.Audience)}
	if ttl := value(v.TTL); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil {
			return out, fmt.Errorf("target %s: ttl %q: %w", t.Name, ttl, err)
		}
		out.TTL = d
	}
	return out, nil
}

// generatedSecrets makes the contents of the Secrets the target has the suite generate
// (deploy.secrets), by Secret name, and returns the signing key (zero without an ed25519-pem
// Secret) whose public half verifies the credentials.
func generatedSecrets(t *target.Target, keys APIKeys) (map[string][]byte, SigningKey, error) {
	secrets := map[string][]byte{}
	var signing SigningKey
	for _, s := range t.Deploy.Secrets {
		switch s.Generate {
		case "ed25519-pem":
			k, err := NewSigningKey()
			if err != nil {
				return nil, SigningKey{}, err
			}
			signing, secrets[s.Name] = k, k.PrivatePEM
		case "tenant-keys":
			secrets[s.Name] = keys.File(keyFormat(t))
		default:
			return nil, SigningKey{}, fmt.Errorf("secret %s: the suite cannot generate %q", s.Name, s.Generate)
		}
	}
	return secrets, signing, nil
}

// keyFormat is how the target makes and lists its tenants' keys; without one, bare random keys.
func keyFormat(t *target.Target) target.KeyFormat {
	if a := t.Create.Auth; a != nil && a.Keys != nil {
		return *a.Keys
	}
	return target.KeyFormat{}
}

// databaseDSN reaches the target's database on this host's port, as the target's own role
// (its tables are in its schema), through a port-forward, which arrives on PostgreSQL's
// loopback: there, as for the pod's own tools, no TLS is required.
func databaseDSN(db *target.BundledDatabase, password string, port int) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", db.Role, password, port, db.Database)
}
