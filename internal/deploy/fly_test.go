package deploy

import (
	"fmt"
	"net/http"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/replication"
)

// flyConfig is the part of fly.toml that flystorage uses. A key it does not
// know fails the test, so a misspelt key (which Fly may ignore) is caught.
type flyConfig struct {
	App           string `toml:"app"`
	PrimaryRegion string `toml:"primary_region"`
	KillSignal    string `toml:"kill_signal"`
	KillTimeout   any    `toml:"kill_timeout"` // seconds, or a duration such as "10s"
	Build         struct {
		Dockerfile string `toml:"dockerfile"`
	} `toml:"build"`
	Deploy struct {
		ReleaseCommand string `toml:"release_command"`
	} `toml:"deploy"`
	Env         map[string]string `toml:"env"`
	Mounts      []flyMount        `toml:"mounts"`
	HTTPService *struct {
		InternalPort       int      `toml:"internal_port"`
		ForceHTTPS         bool     `toml:"force_https"`
		AutoStopMachines   string   `toml:"auto_stop_machines"`
		AutoStartMachines  bool     `toml:"auto_start_machines"`
		MinMachinesRunning int      `toml:"min_machines_running"`
		Processes          []string `toml:"processes"`
		Concurrency        *struct {
			Type      string `toml:"type"`
			SoftLimit int    `toml:"soft_limit"`
			HardLimit int    `toml:"hard_limit"`
		} `toml:"concurrency"`
		Checks []flyCheck `toml:"checks"`
	} `toml:"http_service"`
	Checks  map[string]flyCheck `toml:"checks"`
	Metrics *struct {
		Port int    `toml:"port"`
		Path string `toml:"path"`
	} `toml:"metrics"`
	Restart []struct {
		Policy    string   `toml:"policy"`
		Retries   int      `toml:"retries"`
		Processes []string `toml:"processes"`
	} `toml:"restart"`
	VM []struct {
		Size   string `toml:"size"`
		Memory string `toml:"memory"`
	} `toml:"vm"`
}

type flyMount struct {
	Source            string `toml:"source"`
	Destination       string `toml:"destination"`
	InitialSize       string `toml:"initial_size"`
	SnapshotRetention int    `toml:"snapshot_retention"`
}

type flyCheck struct {
	Type        string            `toml:"type"`
	Port        int               `toml:"port"`
	Method      string            `toml:"method"`
	Path        string            `toml:"path"`
	GracePeriod string            `toml:"grace_period"`
	Interval    string            `toml:"interval"`
	Timeout     string            `toml:"timeout"`
	Headers     map[string]string `toml:"headers"`
}

func readFlyConfig(t *testing.T, name string) flyConfig {
	t.Helper()
	var c flyConfig
	md, err := toml.Decode(readRepoFile(t, name), &c)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		t.Fatalf("%s: keys this test does not know: %v (a typo? else add them to flyConfig)", name, keys)
	}
	return c
}

// killTimeout reads kill_timeout, which Fly takes as seconds or a duration.
func (c flyConfig) killTimeout() (time.Duration, error) {
	switch v := c.KillTimeout.(type) {
	case int64:
		return time.Duration(v) * time.Second, nil
	case string:
		return time.ParseDuration(v)
	case nil:
		return 5 * time.Second, nil // Fly's default
	}
	return 0, fmt.Errorf("kill_timeout = %v is neither seconds nor a duration", c.KillTimeout)
}

var flyFiles = []string{"fly.toml", "fly.sqlite.toml"}

// TestFlyConfigs checks what both Fly configurations share.
func TestFlyConfigs(t *testing.T) {
	read := configVars(t)
	shutdown := appShutdownTimeout(t)
	for _, name := range flyFiles {
		t.Run(name, func(t *testing.T) {
			c := readFlyConfig(t, name)
			if c.App == "" || c.PrimaryRegion == "" {
				t.Error("app and primary_region must be set")
			}
			if c.Build.Dockerfile != "Dockerfile" {
				t.Errorf("[build] dockerfile = %q, want the repo's Dockerfile", c.Build.Dockerfile)
			}

			// The port: the app's default, which [env] PORT must not contradict.
			hs := c.HTTPService
			if hs == nil {
				t.Fatal("no [http_service]")
			}
			if hs.InternalPort != config.DefaultPort {
				t.Errorf("internal_port = %d, but the app listens on %d by default", hs.InternalPort, config.DefaultPort)
			}
			if cfg := loadConfig(t, name, c.Env).Config; cfg.Port != hs.InternalPort {
				t.Errorf("with [env], the app listens on %d, not internal_port %d", cfg.Port, hs.InternalPort)
			}
			if !hs.ForceHTTPS {
				t.Error("force_https must be true")
			}
			if hs.AutoStopMachines == "" || !hs.AutoStartMachines {
				t.Error("auto_stop_machines and auto_start_machines must be set")
			}
			if cc := hs.Concurrency; cc == nil || cc.Type != "requests" || cc.SoftLimit <= 0 || cc.SoftLimit > cc.HardLimit {
				t.Errorf(`[http_service.concurrency] must be type = "requests" with 0 < soft_limit <= hard_limit, got %+v`, cc)
			}

			// Every check asks for a real route and gets 200 from the real
			// handler on a healthy backend.
			h := newHandler(t)
			if len(hs.Checks) == 0 {
				t.Error("no [[http_service.checks]]")
			}
			readyz := false
			for _, ck := range hs.Checks {
				readyz = readyz || ck.Path == "/readyz"
				checkCheck(t, h, "[[http_service.checks]]", ck, hs.ForceHTTPS)
			}
			if !readyz {
				t.Error("no [[http_service.checks]] on /readyz, which tells the proxy when the backends are down")
			}
			for id, ck := range c.Checks {
				if ck.Type != "http" {
					continue
				}
				if ck.Port != hs.InternalPort {
					t.Errorf("[checks.%s] port = %d, want internal_port %d", id, ck.Port, hs.InternalPort)
				}
				checkCheck(t, h, "[checks."+id+"]", ck, hs.ForceHTTPS)
			}
			if m := c.Metrics; m != nil {
				switch port := strconv.Itoa(m.Port); {
				case m.Port == hs.InternalPort:
					if code := get(h, m.Path, nil); code != http.StatusOK {
						t.Errorf("[metrics] path %s answers %d: not a route of the app", m.Path, code)
					}
				case c.Env["METRICS_PORT"] != port:
					t.Errorf("[metrics] port = %d, but the app serves neither there: want internal_port %d, or [env] METRICS_PORT = %q", m.Port, hs.InternalPort, port)
				case m.Path != "/metrics":
					t.Errorf("[metrics] path = %q, but the metrics server on METRICS_PORT serves /metrics only", m.Path)
				}
			}

			// Stopping: a signal the app handles, and time to finish.
			if c.KillSignal != "SIGTERM" && c.KillSignal != "SIGINT" {
				t.Errorf("kill_signal = %q: the app shuts down gracefully on SIGTERM or SIGINT only", c.KillSignal)
			}
			kt, err := c.killTimeout()
			if err != nil {
				t.Fatal(err)
			}
			if kt <= shutdown {
				t.Errorf("kill_timeout = %s, but the app may take %s to drain requests: Fly would kill it mid-request", kt, shutdown)
			}
			// A SQLite machine on a volume replicates (its bucket comes
			// from `fly storage create`'s secrets), and then ships what
			// the bucket lacks. fly.toml's database is a secret.
			if setup := loadConfig(t, name, c.Env); c.Env["DATABASE_PATH"] != "" && setup.Replication.Enabled {
				if need := shutdown + replication.FinalSyncTimeout; kt <= need {
					t.Errorf("kill_timeout = %s, but the app may take %s to drain requests and %s for its last sync to the bucket: Fly would kill it before the replica holds every write", kt, shutdown, replication.FinalSyncTimeout)
				}
			}

			checkVarsRead(t, name+" [env]", c.Env, read)
		})
	}
}

// checkCheck checks one health check against the real handler.
func checkCheck(t *testing.T, h http.Handler, where string, ck flyCheck, forceHTTPS bool) {
	t.Helper()
	if ck.Method != "" && !strings.EqualFold(ck.Method, http.MethodGet) {
		t.Errorf("%s method = %q: the health routes answer GET", where, ck.Method)
	}
	if !strings.HasPrefix(ck.Path, "/") {
		t.Errorf("%s path = %q, want an absolute path", where, ck.Path)
		return
	}
	if forceHTTPS && ck.Headers["X-Forwarded-Proto"] != "https" {
		t.Errorf(`%s: with force_https, send headers = { X-Forwarded-Proto = "https" }`, where)
	}
	if code := get(h, ck.Path, ck.Headers); code != http.StatusOK {
		t.Errorf("%s path %s answers %d on a healthy app: not a route, or not a health route", where, ck.Path, code)
	}
	for _, d := range []string{ck.GracePeriod, ck.Interval, ck.Timeout} {
		if _, err := time.ParseDuration(d); d != "" && err != nil {
			t.Errorf("%s: %q is not a duration", where, d)
		}
	}
}

// TestFlyPostgres checks fly.toml, the Postgres and Tigris deployment.
func TestFlyPostgres(t *testing.T) {
	c := readFlyConfig(t, "fly.toml")

	// release_command runs a binary the Dockerfile builds and installs.
	args := strings.Fields(c.Deploy.ReleaseCommand)
	if len(args) == 0 {
		t.Fatal("no [deploy] release_command: Postgres needs migrations before each release")
	}
	installed := dockerfileBinaries(t)
	if _, ok := installed[args[0]]; !ok {
		t.Errorf("release_command runs %s, but the Dockerfile installs only %v", args[0], keysOf(installed))
	}
	if installed[args[0]] != "./cmd/migrate" || len(args) != 2 || args[1] != "up" {
		t.Errorf("release_command = %q, want the migrate binary with `up`", c.Deploy.ReleaseCommand)
	}

	if len(c.Mounts) != 0 {
		t.Error("fly.toml mounts a volume: Postgres and Tigris need none, and a volume ties each machine to one")
	}
	if _, ok := c.Env["DATABASE_PATH"]; ok {
		t.Error("fly.toml sets DATABASE_PATH: with DATABASE_URL from `fly postgres attach`, the app refuses both")
	}

	// With the secrets Fly's commands set, the app runs on Postgres and Tigris.
	env := map[string]string{}
	for k, v := range flySecrets {
		env[k] = v
	}
	for k, v := range c.Env {
		env[k] = v
	}
	setup := loadConfig(t, "fly.toml with Fly's secrets", env)
	cfg := setup.Config
	if setup.Driver.Name != "postgres" || cfg.S3 == nil {
		t.Errorf("with Fly's secrets, the app runs on %s and %v, want Postgres and Tigris", setup.Driver.Name, cfg.S3)
	}
	if cfg.S3 != nil && cfg.S3.PathStyle {
		t.Error("fly.toml turns on path-style S3 URLs: Tigris wants virtual-hosted ones")
	}
}

// TestFlySQLite checks fly.sqlite.toml, the SQLite on a volume deployment.
func TestFlySQLite(t *testing.T) {
	c := readFlyConfig(t, "fly.sqlite.toml")
	if c.Deploy.ReleaseCommand != "" {
		t.Errorf("release_command = %q: the release machine has no volume, so it cannot reach the SQLite file (the app migrates at start)", c.Deploy.ReleaseCommand)
	}
	if len(c.Mounts) != 1 {
		t.Fatalf("%d [[mounts]], want one volume", len(c.Mounts))
	}
	m := c.Mounts[0]
	if m.Source == "" || !path.IsAbs(m.Destination) {
		t.Errorf("[[mounts]] needs source and an absolute destination, got %+v", m)
	}
	if m.SnapshotRetention < 1 || m.SnapshotRetention > 60 {
		t.Errorf("snapshot_retention = %d, want 1 to 60 days", m.SnapshotRetention)
	}

	// Failover restarts the process: the machine must come back after an
	// error exit (internal/replication, ErrPromoted and a lost lease).
	if len(c.Restart) != 1 {
		t.Errorf("%d [[restart]] sections, want one: failover relies on Fly restarting a machine whose process fails", len(c.Restart))
	}
	for _, r := range c.Restart {
		if (r.Policy != "on-failure" && r.Policy != "always") || r.Retries < 1 || len(r.Processes) > 0 {
			t.Errorf("[[restart]] = %+v: want policy on-failure (or always) with retries, for every process: a machine that takes over the lease exits to restart as the writer", r)
		}
	}

	// The entrypoint hands the volume to the app user at the mount.
	dataDir := regexp.MustCompile(`(?m)^data_dir=(\S+)$`).FindStringSubmatch(readRepoFile(t, "scripts/docker-entrypoint.sh"))
	if dataDir == nil {
		t.Fatal("scripts/docker-entrypoint.sh: no data_dir=... line")
	}
	if dataDir[1] != m.Destination {
		t.Errorf("the volume is mounted at %s, but docker-entrypoint.sh gives %s to the app user: the app could not write to a fresh volume", m.Destination, dataDir[1])
	}

	// The database and the files both live on the volume.
	if _, ok := c.Env["DATABASE_URL"]; ok {
		t.Error("fly.sqlite.toml sets DATABASE_URL")
	}
	setup := loadConfig(t, "fly.sqlite.toml", c.Env)
	if setup.Driver.Name != "sqlite" {
		t.Fatalf("fly.sqlite.toml runs on %s, want SQLite", setup.Driver.Name)
	}
	for what, p := range map[string]string{"DATABASE_PATH": setup.DB.Redacted(), "the file directory": setup.Config.BlobDir} {
		if !under(p, m.Destination) {
			t.Errorf("%s is %s, outside the volume at %s: it would vanish at the next deploy", what, p, m.Destination)
		}
	}
}

// under reports whether the absolute path p lies inside dir.
func under(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsAbs(p) && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../")
}
