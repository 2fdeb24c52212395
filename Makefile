# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test bench migrate build vet

# run builds the app into bin/, saying so (the first build downloads the
# modules and compiles for about 2 minutes, silently otherwise), then
# starts it with .env, if there is one, in its environment.
run:
	@echo "make run: building ./cmd/app into bin/app; the first time Go downloads modules and compiles for about 2 minutes, later builds take seconds"
	@go build -o bin/app ./cmd/app & build=$$!; \
	  while kill -0 $$build 2>/dev/null; do \
	    for s in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do kill -0 $$build 2>/dev/null && sleep 1; done; \
	    kill -0 $$build 2>/dev/null && echo "make run: still compiling..."; \
	  done; wait $$build
	@echo "make run: starting bin/app with .env, if there is one; it serves http://localhost:8080 unless PORT says otherwise; Ctrl-C stops it"
	@set -a; [ ! -f .env ] || . ./.env; set +a; exec bin/app

# test runs every test against real Postgres, MinIO and SQLite files; see
# scripts/test.sh. Pass go test flags with TESTFLAGS="-race -v".
test:
	scripts/test.sh $(value TESTFLAGS)

# bench measures each path against this machine's limits (the app's own
# /healthz, or the bare driver) and prints ratio and target; see
# scripts/bench.sh and docs/performance.md. BENCH_DURATION=5s per figure.
bench:
	scripts/bench.sh

migrate:
	set -a; [ ! -f .env ] || . ./.env; set +a; go run ./cmd/migrate up

# build makes static binaries, as the Dockerfile does.
build:
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o bin/ ./cmd/app ./cmd/migrate

vet:
	test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	go vet ./...
