package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	dockerfilePath = "../Dockerfile"
	goModPath      = "../../../go.mod"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// stage is one FROM and what follows it.
type stage struct {
	from, alias string
	body        []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows enough of the
// syntax for the checks: comments, continuation lines, FROM ... AS name.
func parseDockerfile(text string) ([]stage, error) {
	var stages []stage
	var pending strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		cmd, args, _ := strings.Cut(pending.String(), " ")
		pending.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := slices.DeleteFunc(strings.Fields(in.args), func(s string) bool { return strings.HasPrefix(s, "--") })
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: FROM without an image", in.line)
			}
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.alias = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	return stages, sc.Err()
}

// goVersion returns go.mod's go line.
func goVersion(gomod string) (string, error) {
	for line := range strings.Lines(gomod) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("go.mod has no go line")
}

// checkDockerfile returns what is wrong with the shop's Dockerfile.
func checkDockerfile(text, goVer string) (errs []error) {
	stages, err := parseDockerfile(text)
	if err != nil {
		return []error{err}
	}
	if len(stages) < 2 {
		return []error{fmt.Errorf("%d stage(s), want a build stage and a final one", len(stages))}
	}
	// The build stage is the one that builds the shop.
	build := -1
	for i, s := range stages {
		for _, in := range s.body {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") && strings.Contains(in.args, "./examples/shop") {
				build = i
				if !strings.Contains(in.args, "CGO_ENABLED=0") {
					errs = append(errs, fmt.Errorf("line %d: go build without CGO_ENABLED=0: the final image has no libc", in.line))
				}
			}
		}
	}
	if build < 0 {
		return append(errs, errors.New("no RUN go build ... ./examples/shop"))
	}
	b := stages[build]
	image, tag, _ := strings.Cut(b.from, ":")
	if v, _, _ := strings.Cut(tag, "-"); image != "golang" || v != goVer {
		errs = append(errs, fmt.Errorf("build stage FROM %s, want golang:%s (go.mod's go line)", b.from, goVer))
	}
	// go mod download is its own layer, before the sources are copied.
	download, sources := -1, -1
	for i, in := range b.body {
		if in.cmd == "RUN" && strings.Contains(in.args, "go mod download") && download < 0 {
			download = i
		}
		if in.cmd == "COPY" && strings.HasPrefix(in.args, ". ") && sources < 0 {
			sources = i
		}
	}
	if download < 0 || sources < 0 || download > sources {
		errs = append(errs, errors.New("build stage: no RUN go mod download before COPY . ."))
	}
	final := stages[len(stages)-1]
	if build == len(stages)-1 {
		errs = append(errs, errors.New("the final stage is the build stage"))
	}
	var user string
	copied, exposed, entry := false, false, false
	for _, in := range final.body {
		switch in.cmd {
		case "USER":
			user = in.args
		case "COPY":
			copied = copied || b.alias != "" && strings.Contains(in.args, "--from="+b.alias) || strings.Contains(in.args, "--from="+strconv.Itoa(build))
		case "EXPOSE":
			exposed = exposed || slices.Contains(strings.Fields(in.args), strconv.Itoa(httpPort))
		case "ENTRYPOINT":
			entry = strings.Contains(in.args, `"/shop"`)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		// Kubernetes checks runAsNonRoot only against a numeric user.
		errs = append(errs, fmt.Errorf("final stage: USER %q, want a numeric non-root uid", user))
	}
	if !copied {
		errs = append(errs, errors.New("final stage: nothing copied from the build stage"))
	}
	if !exposed {
		errs = append(errs, fmt.Errorf("final stage: no EXPOSE %d", httpPort))
	}
	if !entry {
		errs = append(errs, errors.New(`final stage: no ENTRYPOINT ["/shop"]`))
	}
	return errs
}

func readDockerfile(t *testing.T) (text, goVer string) {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(goModPath)
	if err != nil {
		t.Fatal(err)
	}
	goVer, err = goVersion(string(gomod))
	if err != nil {
		t.Fatal(err)
	}
	return string(data), goVer
}

func TestDockerfile(t *testing.T) {
	text, goVer := readDockerfile(t)
	for _, err := range checkDockerfile(text, goVer) {
		t.Error(err)
	}
}

func TestDockerfileCatchBreakage(t *testing.T) {
	text, goVer := readDockerfile(t)
	tests := []struct {
		name, old, new, want string
	}{
		{"other Go version", "FROM golang:" + goVer, "FROM golang:1.22.0", "go.mod's go line"},
		{"cgo", "CGO_ENABLED=0 ", "", "CGO_ENABLED=0"},
		{"another package", "./examples/shop", "./examples/hello", "go build"},
		{"one stage", "FROM gcr.io/distroless/static-debian12:nonroot", "", "stage"},
		{"root", "USER 65532:65532", "USER root", "USER"},
		{"uid 0", "USER 65532:65532", "USER 0", "USER"},
		{"named user", "USER 65532:65532", "USER nonroot", "numeric"},
		{"no user", "USER 65532:65532\n", "", "USER"},
		{"no module layer", "RUN go mod download\n", "", "go mod download"},
		{"no entrypoint", `ENTRYPOINT ["/shop"]`, `CMD ["/shop"]`, "ENTRYPOINT"},
		{"other port", "EXPOSE 8000", "EXPOSE 8080", "EXPOSE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := strings.Replace(text, tt.old, tt.new, 1)
			if broken == text {
				t.Fatalf("the Dockerfile has no %q", tt.old)
			}
			errs := checkDockerfile(broken, goVer)
			for _, err := range errs {
				if strings.Contains(err.Error(), tt.want) {
					return
				}
			}
			t.Errorf("no error mentions %q: %v", tt.want, errs)
		})
	}
}

func TestGoVersion(t *testing.T) {
	tests := []struct {
		gomod, want string
		ok          bool
	}{
		{"module m\n\ngo 1.26.0\n", "1.26.0", true},
		{"module m\n\ngo 1.26\n\ntoolchain go1.26.8\n", "1.26", true},
		{"module m\n", "", false},
	}
	for _, tt := range tests {
		got, err := goVersion(tt.gomod)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("goVersion(%q) = %q, %v; want %q", tt.gomod, got, err, tt.want)
		}
	}
}
