package deploy

import (
	"bytes"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/example/flystorage/internal/cache"
	"github.com/example/flystorage/internal/config"
)

// composeFile is the part of the Compose format docker-compose.yml uses. A
// key it does not know fails the test, so a misspelt key is caught.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"` // "." or a mapping
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Restart string `yaml:"restart"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readRepoFile(t, "docker-compose.yml"))))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v (a typo? else add the key to composeFile)", err)
	}
	return c
}

var (
	// releaseTag is MinIO's tag form, e.g. RELEASE.2025-09-07T16-13-09Z.
	releaseTag = regexp.MustCompile(`^RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$`)
	// majorTag pins a major version at least: 17, 17.6, 17-bookworm.
	majorTag = regexp.MustCompile(`^\d+(\.\d+)*(-[a-z0-9.]+)?$`)
)

// checkPinned fails for an image without a tag or digest, or tagged latest;
// MinIO's images must come from quay.io at a RELEASE tag.
func checkPinned(t *testing.T, where, image string) {
	t.Helper()
	ref, digest, _ := strings.Cut(image, "@")
	name, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	switch {
	case tag == "" && digest == "":
		t.Errorf("%s: image %s has no tag: it would pull whatever is latest", where, image)
	case tag == "latest" || strings.HasPrefix(tag, "latest-"):
		t.Errorf("%s: image %s is not pinned", where, image)
	}
	base := name[strings.LastIndex(name, "/")+1:]
	if base == "minio" || base == "mc" {
		if !strings.HasPrefix(name, "quay.io/minio/") {
			t.Errorf("%s: image %s: pull MinIO from quay.io/minio/ (Docker Hub stopped serving minio/* in 2026)", where, image)
		}
		if !releaseTag.MatchString(tag) {
			t.Errorf("%s: image %s: pin MinIO to a RELEASE.YYYY-MM-DDTHH-MM-SSZ tag", where, image)
		}
	}
	if (base == "postgres" || base == "redis") && !majorTag.MatchString(tag) {
		t.Errorf("%s: image %s: pin %s's major version", where, image, base)
	}
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	read := configVars(t)

	var app, migrate, bucket, db, store, redis string // service names
	for name, s := range c.Services {
		where := "docker-compose.yml " + name
		if (s.Image == "") == (s.Build == nil) {
			t.Errorf("%s: want an image or a build, not both or neither", where)
		}
		if s.Image != "" {
			checkPinned(t, where, s.Image)
		}
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on %s, which is no service", where, dep)
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", where, dep, dep)
			case d.Condition != "service_healthy" && d.Condition != "service_completed_successfully":
				t.Errorf("%s depends on %s with condition %q: want service_healthy or service_completed_successfully", where, dep, d.Condition)
			}
		}

		switch image := s.Image; {
		case s.Build != nil:
			// Built from the Dockerfile: the app reads every variable it
			// is given, and starts with them.
			if s.Build != "." {
				t.Errorf("%s: build = %v, want the repo's Dockerfile (build: .)", where, s.Build)
			}
			checkVarsRead(t, where, s.Environment, read)
			loadConfig(t, where, s.Environment)
			if len(s.Command) > 0 && s.Command[0] == "/app/migrate" {
				migrate = name
			} else {
				app = name
			}
		case strings.HasPrefix(image, "postgres:"):
			db = name
			if s.Healthcheck == nil || !slices.Contains(s.Healthcheck.Test, "pg_isready") {
				t.Errorf("%s: want a pg_isready healthcheck", where)
			}
		case strings.HasPrefix(image, "quay.io/minio/minio:"):
			store = name
			if s.Healthcheck == nil {
				t.Errorf("%s: want a healthcheck", where)
			}
		case strings.HasPrefix(image, "quay.io/minio/mc:"):
			bucket = name
		case strings.HasPrefix(image, "redis:"):
			redis = name
			if s.Healthcheck == nil || !slices.Contains(s.Healthcheck.Test, "redis-cli") || !slices.Contains(s.Healthcheck.Test, "ping") {
				t.Errorf("%s: want a redis-cli ping healthcheck", where)
			}
		}
	}
	for what, name := range map[string]string{"the app": app, "migrate": migrate, "the bucket creator (mc)": bucket, "Postgres": db, "MinIO": store, "Redis (Upstash on Fly)": redis} {
		if name == "" {
			t.Errorf("docker-compose.yml has no service for %s", what)
		}
	}
	if t.Failed() {
		return
	}

	if cmd := c.Services[migrate].Command; !slices.Equal(cmd, []string{"/app/migrate", "up"}) {
		t.Errorf("%s runs %q, want /app/migrate up, as fly.toml's release_command", migrate, cmd)
	}
	if s := c.Services[bucket]; s.Restart != "no" {
		t.Errorf("%s: a one-shot service wants restart: \"no\"", bucket)
	}

	// The app waits for a healthy Postgres and Redis, the bucket and the
	// migrations.
	s := c.Services[app]
	for dep, cond := range map[string]string{db: "service_healthy", redis: "service_healthy", bucket: "service_completed_successfully", migrate: "service_completed_successfully"} {
		if got := s.DependsOn[dep].Condition; got != cond {
			t.Errorf("%s depends on %s with %q, want %q", app, dep, got, cond)
		}
	}
	setup := loadConfig(t, app, s.Environment)
	cfg := setup.Config
	redisCfg, err := cache.Load(func(name string) string { return s.Environment[name] })
	if err != nil {
		t.Errorf("%s: %v", app, err)
	}
	if setup.Driver.Name != "postgres" || cfg.S3 == nil || !redisCfg.Enabled() {
		t.Errorf("%s runs on %s, S3 %v, Redis %v: want Postgres, MinIO and Redis", app, setup.Driver.Name, cfg.S3 != nil, redisCfg.Enabled())
	} else if !cfg.S3.PathStyle {
		t.Errorf("%s: MinIO reached by its service name needs path-style URLs (S3_FORCE_PATH_STYLE=true)", app)
	}
	if u, err := url.Parse(s.Environment["REDIS_URL"]); err != nil || u.Hostname() != redis {
		t.Errorf("%s: REDIS_URL %q does not name the service %s", app, s.Environment["REDIS_URL"], redis)
	}
	for _, name := range []string{"DATABASE_URL", "BUCKET_NAME", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_PUBLIC_ENDPOINT", "REDIS_URL"} {
		if s.Environment[name] == "" {
			t.Errorf("%s: want %s", app, name)
		}
	}
	published := false
	for _, p := range s.Ports {
		f := strings.Split(p, ":")
		published = published || (f[len(f)-1] == strconv.Itoa(config.DefaultPort) && f[len(f)-2] == "8080")
	}
	if !published {
		t.Errorf("%s: want port %d published as localhost:8080, got %v", app, config.DefaultPort, s.Ports)
	}
}
