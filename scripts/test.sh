#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it).
#
#   1. installs what the tests need: the npm packages of tests/js (official socket.io-client 4.8
#      and 2.5 (allowEIO3), for reference runs socket.io 4.8, playwright-core for the browser
#      test, @socket.io/redis-adapter, @socket.io/redis-emitter and redis for the cluster tests),
#      pinned by tests/js/package-lock.json; Debian's chromium for the browser test when
#      /usr/bin/chromium is missing, and Debian's redis-server when it is missing (apt-get, as
#      root; playwright never downloads a browser; the cluster tests start their own redis on a
#      free port);
#   2. checks formatting and clippy (-D warnings);
#   3. runs every Rust test of the workspace: unit tests, wire-level integration tests and the
#      interop suite (official JS client against ringio under io_uring and epoll, 1 and 2 shards);
#   4. runs every fuzz target for a few seconds (stable replay driver; SKIP_FUZZ=1 skips);
#   5. runs the official Engine.IO / Socket.IO protocol suites against `ringio conformance` with
#      1 and 2 shards, when local mirrors of socketio/engine.io-protocol and
#      socketio/socket.io-protocol exist (MIRROR_ROOT; they cannot be downloaded from the package
#      registries, so a machine without them says so and skips this step).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

need() { command -v "$1" >/dev/null 2>&1 || { echo "test.sh: '$1' is required ($2)" >&2; exit 2; }; }
need cargo "Rust toolchain"
need node "Node.js 18+ for the interop tests"
need npm "npm for the interop tests"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server (Debian package) for the cluster tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
  # the package may start a system instance on 6379: the tests use their own ports
fi
need redis-server "Debian's redis-server (7.x) for the cluster tests"

echo "== npm ci (tests/js)"
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
npm ci --prefix loadtest/generator/node --no-audit --no-fund --loglevel=error

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ] && [ "${RINGIO_SKIP_BROWSER:-0}" != 1 ]; then
  echo "== apt-get install chromium (the browser test)"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: no ${CHROMIUM:-/usr/bin/chromium} and no way to apt-get install chromium here (needs root and apt); RINGIO_SKIP_BROWSER=1 skips the browser test" >&2
    exit 2
  fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== cargo test"
cargo test --workspace

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  # a short smoke run of every fuzz target on the stable toolchain (seeds, regressions and
  # random mutations; no coverage feedback): scripts/fuzz.sh runs the long libFuzzer campaigns
  echo "== fuzz smoke (replay driver, ${FUZZ_SMOKE_SECONDS:-5} s per target)"
  FUZZ_MODE=replay scripts/fuzz.sh "${FUZZ_SMOKE_SECONDS:-5}"
fi

if [ "${SKIP_OFFICIAL_SUITES:-0}" != 1 ]; then
  SUITES_SCRIPT=""
  for c in "$ROOT/../shared/conformance/run-official-suites.sh" "$ROOT/shared/conformance/run-official-suites.sh"; do
    [ -x "$c" ] && { SUITES_SCRIPT="$c"; break; }
  done
  MIRROR=""
  for m in "${MIRROR_ROOT:-}" "$ROOT/../.mirror" /work/.mirror; do
    [ -n "$m" ] && [ -d "$m/socketio+engine.io-protocol" ] && [ -d "$m/socketio+socket.io-protocol" ] && { MIRROR="$m"; break; }
  done
  if [ -z "$SUITES_SCRIPT" ] || [ -z "$MIRROR" ]; then
    echo "== official protocol suites: not run (no run-official-suites.sh or no protocol mirrors on this machine)"
  else
    cargo build --release --bin ringio
    PORT="${CONFORMANCE_PORT:-3000}"
    for shards in 1 2; do
      echo "== official protocol suites, $shards shard(s)"
      # The suites race themselves in places (shared/docs/conformance.md: Node's own server
      # fails "forcefully closes the session" about 1 run in 33): a failed run is repeated once,
      # and says so.
      for attempt in 1 2; do
        if MIRROR_ROOT="$MIRROR" \
          ENGINEIO_URL="http://localhost:$PORT" SOCKETIO_URL="http://localhost:$PORT" \
          ENGINEIO_SERVER_CMD="$ROOT/target/release/ringio conformance --port $PORT --shards $shards" \
          SOCKETIO_SERVER_CMD="$ROOT/target/release/ringio conformance --port $PORT --shards $shards" \
          "$SUITES_SCRIPT" > "$ROOT/target/official-suites-$shards.log" 2>&1; then
          tail -n 2 "$ROOT/target/official-suites-$shards.log"
          break
        fi
        tail -n 2 "$ROOT/target/official-suites-$shards.log"
        grep -E "^ +[0-9]+\) " "$ROOT/target/official-suites-$shards.log" | sort -u | head -20
        if [ "$attempt" = 2 ]; then
          echo "official suites failed twice with $shards shard(s) (log: target/official-suites-$shards.log)" >&2
          exit 1
        fi
        echo "== official suites: attempt $attempt failed, running them once more"
      done
    done
  fi
fi
echo "== all tests passed"
