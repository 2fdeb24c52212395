# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test bench migrate build vet

# run loads .env, if there is one, into the app's environment.
run:
	set -a; [ ! -f .env ] || . ./.env; set +a; go run ./cmd/app

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
