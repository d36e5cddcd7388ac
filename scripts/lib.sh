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
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    # The rabbitmq-server package tries to start the broker through init; that may fail
    # without systemd (containers, CI) and is harmless: start_rabbitmq starts it.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  command -v swift >/dev/null || { log "swift is not on PATH: install Swift 6 (swift.org) first"; exit 1; }
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
