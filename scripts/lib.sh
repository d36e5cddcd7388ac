# Shared by the scripts in this folder: installing what chatqueue needs on
# Debian and starting a local RabbitMQ. Sourced, not run.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# systemd: for systemd-analyze in scripts/check-systemd.sh (no running systemd needed).
# libssl-dev: CRabbitMQ links OpenSSL itself for non-blocking TLS writes (librabbitmq-dev pulls it in today; named so it stays).
APT_PACKAGES=(librabbitmq-dev libssl-dev libcurl4-openssl-dev rabbitmq-server python3-pika pkg-config systemd openssl)

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages that are missing (needs root or sudo).
install_packages() {
  install_apt_packages "${APT_PACKAGES[@]}"
  command -v swift >/dev/null || { log "swift is not on PATH: install Swift 6 (swift.org) first"; exit 1; }
}

# Installs those of the named Debian packages that are missing.
install_apt_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    # The rabbitmq-server package tries to start the broker through init; that may fail
    # without systemd (containers, CI) and is harmless: start_rabbitmq starts it.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Starts a local RabbitMQ unless one already answers, and waits until it is up.
start_rabbitmq() {
  if as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    return 0
  fi
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1 || true
  # The node registers with epmd a moment after -detached returns; await_startup
  # fails at once on a node it cannot see yet.
  for _ in $(seq 1 60); do
    as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break
    sleep 1
  done
  as_root rabbitmqctl -q await_startup --timeout 120 >/dev/null
  log "RabbitMQ is up"
}

# Builds the package (debug unless CHATQUEUE_BUILD_CONFIGURATION=release).
build() {
  local configuration="${CHATQUEUE_BUILD_CONFIGURATION:-debug}"
  log "building ($configuration)"
  (cd "$ROOT" && swift build -c "$configuration" 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]' >&2)
  CHATQUEUE_BIN="$(cd "$ROOT" && swift build -c "$configuration" --show-bin-path)/chatqueue"
  export CHATQUEUE_BIN
}

# The set-up both benchmarks share (scripts/bench.sh, scripts/ratelimit-bench.sh),
# with SMOKE set (1: a debug build): sets BROKER_URL, SCRATCH, CONFIGURATION,
# STAMP, RESULTS (made, with logs/) and BIN, raises the descriptor limit,
# starts the broker, builds, and stops every pid in STARTED_PIDS on exit.
# The release build links the Swift runtime and Foundation statically, as
# docs/operations.md recommends for deployment: ~6 MB less resident memory
# per worker process than the shared libraries (measured idle: 26.0 vs 31.7 MB).
bench_prepare() {
  BROKER_URL="${CHATQUEUE_BENCH_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
  SCRATCH="${CHATQUEUE_SCRATCH_PATH:-$ROOT/.build}"
  CONFIGURATION=release
  [ "$SMOKE" -eq 1 ] && CONFIGURATION=debug
  STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
  RESULTS="$ROOT/bench/results/$STAMP"
  mkdir -p "$RESULTS/logs"
  # Thousands of concurrent streams need thousands of descriptors (worker: one
  # upstream connection per stream; mock: the other end).
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
  # Set-up is ./scripts/run.sh's or ./scripts/test.sh's job; only the broker is started here.
  command -v swift >/dev/null || { log "swift is not on PATH: install Swift 6 (swift.org) first"; exit 1; }
  start_rabbitmq
  local static=()
  if [ "$CONFIGURATION" = release ]; then static=(--static-swift-stdlib); fi
  log "building ($CONFIGURATION ${static[*]}, scratch path $SCRATCH)"
  (cd "$ROOT" && swift build -c "$CONFIGURATION" "${static[@]}" --scratch-path "$SCRATCH" --product chatqueue 2>&1 |
    grep -vE '^\[[0-9]+/[0-9]+\]' >&2)
  BIN="$(cd "$ROOT" && swift build -c "$CONFIGURATION" "${static[@]}" --scratch-path "$SCRATCH" --show-bin-path)/chatqueue"
  STARTED_PIDS=()
  trap bench_cleanup EXIT
}

# SIGTERM, up to 10 s, then SIGKILL.
stop_pid() {
  local pid="$1"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
}
