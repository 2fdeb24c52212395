package deploy

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	Cmd   string // upper case: FROM, RUN, COPY, ...
	Args  string
	Stage int // index of the FROM it belongs to
}

// stage is one FROM of a Dockerfile.
type stage struct {
	Image string
	Name  string
}

// readDockerfile splits the Dockerfile into stages and instructions.
func readDockerfile(t *testing.T) ([]stage, []instruction) {
	t.Helper()
	var (
		stages []stage
		insts  []instruction
		cur    string
	)
	for _, line := range strings.Split(readRepoFile(t, "Dockerfile"), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue // comments may sit inside a continuation, too
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur), " ")
		cur = ""
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			f := strings.Fields(args)
			s := stage{Image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			stages = append(stages, s)
		}
		insts = append(insts, instruction{Cmd: cmd, Args: strings.TrimSpace(args), Stage: len(stages) - 1})
	}
	if len(stages) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	return stages, insts
}

// goBuild is one `go build` of the Dockerfile.
type goBuild struct {
	Env    []string // NAME=value, from ENV and the command's own prefix
	Flags  []string // everything between `go build` and the package, but -o
	Output string   // -o
	Pkg    string
}

func (b goBuild) String() string {
	return strings.Join(b.Env, " ") + " go build " + strings.Join(b.Flags, " ") + " -o " + b.Output + " " + b.Pkg
}

// dockerfileBuilds returns the Dockerfile's `go build` commands.
func dockerfileBuilds(t *testing.T) []goBuild {
	t.Helper()
	_, insts := readDockerfile(t)
	stageEnv := map[int][]string{}
	var builds []goBuild
	for _, in := range insts {
		switch in.Cmd {
		case "ENV":
			words, err := shellFields(in.Args)
			if err != nil {
				t.Fatalf("Dockerfile ENV %s: %v", in.Args, err)
			}
			stageEnv[in.Stage] = append(stageEnv[in.Stage], words...)
		case "RUN":
			for _, part := range strings.Split(in.Args, "&&") {
				words, err := shellFields(part)
				if err != nil {
					t.Fatalf("Dockerfile RUN %s: %v", part, err)
				}
				for len(words) > 0 && strings.HasPrefix(words[0], "--") { // RUN --mount=...
					words = words[1:]
				}
				b := goBuild{Env: slices.Clone(stageEnv[in.Stage])}
				for len(words) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[0]) {
					b.Env, words = append(b.Env, words[0]), words[1:]
				}
				if len(words) < 2 || words[0] != "go" || words[1] != "build" {
					continue
				}
				words = words[2:]
				for i := 0; i < len(words); i++ {
					switch w := words[i]; {
					case w == "-o" && i+1 < len(words):
						b.Output = words[i+1]
						i++
					case strings.HasPrefix(w, "-o="):
						b.Output = strings.TrimPrefix(w, "-o=")
					case strings.HasPrefix(w, "-"):
						b.Flags = append(b.Flags, w)
					default:
						if b.Pkg != "" {
							t.Fatalf("Dockerfile: %q builds more than one package; keep one `go build` per binary", part)
						}
						b.Pkg = w
					}
				}
				if b.Output == "" || b.Pkg == "" {
					t.Fatalf("Dockerfile: %q needs -o and a package", part)
				}
				builds = append(builds, b)
			}
		}
	}
	if len(builds) == 0 {
		t.Fatal("Dockerfile: no `go build`")
	}
	return builds
}

// dockerfileBinaries maps each path in the final image that holds a binary
// the Dockerfile builds to the package it is built from.
func dockerfileBinaries(t *testing.T) map[string]string {
	t.Helper()
	stages, insts := readDockerfile(t)
	built := map[string]string{} // builder path -> package
	for _, b := range dockerfileBuilds(t) {
		built[b.Output] = b.Pkg
	}
	final := len(stages) - 1
	installed := map[string]string{}
	for _, in := range insts {
		if in.Cmd != "COPY" || in.Stage != final {
			continue
		}
		words, err := shellFields(in.Args)
		if err != nil {
			t.Fatal(err)
		}
		from := ""
		for len(words) > 0 && strings.HasPrefix(words[0], "--") {
			if v, ok := strings.CutPrefix(words[0], "--from="); ok {
				from = v
			}
			words = words[1:]
		}
		if from == "" || len(words) < 2 {
			continue
		}
		srcs, dest := words[:len(words)-1], words[len(words)-1]
		for _, src := range srcs {
			pkg, ok := built[src]
			if !ok {
				continue
			}
			to := dest
			if strings.HasSuffix(dest, "/") || len(srcs) > 1 {
				to = path.Join(dest, path.Base(src))
			}
			installed[to] = pkg
		}
	}
	return installed
}

// shellFields splits s into words as sh would: single and double quotes,
// backslash escapes. It expands nothing.
func shellFields(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestShellFields(t *testing.T) {
	got, err := shellFields(`CGO_ENABLED=0 go build -ldflags="-s -w" -o '/app/a b' x\ y`)
	want := []string{"CGO_ENABLED=0", "go", "build", "-ldflags=-s -w", "-o", "/app/a b", "x y"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("shellFields = %q, %v; want %q", got, err, want)
	}
}

func keysOf(m map[string]string) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

// TestDockerfileInstallsBothBinaries checks that the final image holds the
// app and migrate at the fixed paths fly.toml and the README use.
func TestDockerfileInstallsBothBinaries(t *testing.T) {
	want := map[string]string{"/app/app": "./cmd/app", "/app/migrate": "./cmd/migrate"}
	got := dockerfileBinaries(t)
	for p, pkg := range want {
		if got[p] != pkg {
			t.Errorf("the image has %q at %s, want %s built from %s", got[p], p, p, pkg)
		}
	}
	_, insts := readDockerfile(t)
	var entrypoint, cmd string
	for _, in := range insts {
		switch in.Cmd {
		case "ENTRYPOINT":
			entrypoint = in.Args
		case "CMD":
			cmd = in.Args
		}
	}
	if !strings.Contains(entrypoint, "docker-entrypoint.sh") {
		t.Errorf("ENTRYPOINT %s: want scripts/docker-entrypoint.sh, which makes the volume writable and drops root", entrypoint)
	}
	if !strings.Contains(cmd, `"/app/app"`) {
		t.Errorf("CMD %s: want the app", cmd)
	}
}

// TestDockerfileImages checks that every base image is pinned, and that
// the builder runs go.mod's Go.
func TestDockerfileImages(t *testing.T) {
	stages, _ := readDockerfile(t)
	names := map[string]bool{}
	for _, s := range stages {
		if !names[s.Image] {
			checkPinned(t, "Dockerfile FROM", s.Image)
		}
		names[s.Name] = true
	}

	gomod := readRepoFile(t, "go.mod")
	want := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)\s*$`).FindStringSubmatch(gomod)
	if tc := regexp.MustCompile(`(?m)^toolchain go(\S+)\s*$`).FindStringSubmatch(gomod); tc != nil {
		want = tc
	}
	if want == nil {
		t.Fatal("go.mod: no go line")
	}
	var goImage string
	for _, s := range stages {
		if strings.HasPrefix(s.Image, "golang:") || strings.HasPrefix(s.Image, "docker.io/library/golang:") {
			goImage = s.Image
		}
	}
	m := regexp.MustCompile(`:(\d+\.\d+(?:\.\d+)?)(?:-|$)`).FindStringSubmatch(goImage)
	if m == nil {
		t.Fatalf("Dockerfile: no builder FROM golang:<version>, got %q", goImage)
	}
	// golang:1.26-bookworm is the latest 1.26.x: it matches go 1.26.0 in
	// go.mod. golang:1.26.2 must match it exactly.
	if have := m[1]; have != want[1] && !strings.HasPrefix(want[1], have+".") {
		t.Errorf("the builder is Go %s, but go.mod asks for %s", have, want[1])
	}
}

// TestStaticBinaries runs the Dockerfile's own `go build` commands, with
// their environment and flags, and checks that the binaries are statically
// linked: the runtime image has no C library they could count on.
func TestStaticBinaries(t *testing.T) {
	builds := dockerfileBuilds(t)
	for _, b := range builds {
		env := strings.Join(b.Env, " ")
		if !strings.Contains(" "+env+" ", " CGO_ENABLED=0 ") {
			t.Errorf("%s: want CGO_ENABLED=0", b)
		}
		if !slices.Contains(b.Flags, "-trimpath") {
			t.Errorf("%s: want -trimpath", b)
		}
		ld := ""
		for _, f := range b.Flags {
			if v, ok := strings.CutPrefix(f, "-ldflags="); ok {
				ld = v
			}
		}
		if f := strings.Fields(ld); !slices.Contains(f, "-s") || !slices.Contains(f, "-w") {
			t.Errorf("%s: want -ldflags=\"-s -w\"", b)
		}
	}

	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, b := range builds {
		t.Run(path.Base(b.Output), func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(dir, path.Base(b.Output))
			args := append(append([]string{"build"}, b.Flags...), "-o", out, b.Pkg)
			cmd := exec.Command("go", args...)
			cmd.Dir = absRoot // the Dockerfile builds from the repo's root
			// The image is Linux: cross-compile from any host.
			cmd.Env = append(append(os.Environ(), b.Env...), "GOOS=linux")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", b, err, out)
			}
			if err := checkStatic(out); err != nil {
				t.Errorf("%s: %v", b, err)
			}
		})
	}
}

// checkStatic fails for an ELF binary that needs a dynamic loader or a
// shared library.
func checkStatic(name string) error {
	f, err := elf.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			errs = append(errs, errors.New("has a PT_INTERP program header: it needs a dynamic loader"))
		}
	}
	needed, err := f.DynString(elf.DT_NEEDED)
	if err != nil {
		errs = append(errs, err)
	}
	if len(needed) > 0 {
		errs = append(errs, fmt.Errorf("needs shared libraries %v", needed))
	}
	return errors.Join(errs...)
}
