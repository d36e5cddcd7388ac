#!/usr/bin/env bash
# Checks systemd/chatqueue-worker@.service: `systemd-analyze verify` must pass
# without a single complaint, and `systemd-analyze security --offline=yes` must
# rate its exposure 2.0 or lower.
#
#   scripts/check-systemd.sh [path/to/chatqueue]
#
# verify insists that ExecStart's binary exists, so the check runs on a copy of
# the unit (as chatqueue-worker@check.service) whose ExecStart points at the
# given binary (default: $CHATQUEUE_BIN, as set by lib.sh's build). Needs
# systemd-analyze (Debian package systemd), not a running systemd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAX_EXPOSURE="2.0"
binary="${1:-${CHATQUEUE_BIN:-}}"

fail() { printf 'check-systemd: %s\n' "$*" >&2; exit 1; }

command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (apt-get install systemd)"
[ -n "$binary" ] || fail "usage: $0 path/to/chatqueue (or set CHATQUEUE_BIN)"
[ -x "$binary" ] || fail "$binary is not an executable file"
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unit="$work/chatqueue-worker@check.service"
cp "$ROOT/systemd/chatqueue-worker.target" "$work/"
sed "s#^ExecStart=/usr/bin/chatqueue #ExecStart=$binary #" "$ROOT/systemd/chatqueue-worker@.service" >"$unit"
grep -q "^ExecStart=$binary " "$unit" || fail "no 'ExecStart=/usr/bin/chatqueue ' line to point at $binary"

# verify exits 0 on unknown keys and unparsable values (it only warns): any output is a failure.
if ! output="$(cd "$work" && systemd-analyze verify --man=no "./chatqueue-worker@check.service" "./chatqueue-worker.target" 2>&1)" \
  || [ -n "$output" ]; then
  printf '%s\n' "$output" >&2
  fail "systemd-analyze verify failed"
fi
printf 'systemd-analyze verify: ok\n'

report="$(cd "$work" && systemd-analyze security --offline=yes --no-pager "./chatqueue-worker@check.service" 2>&1)" || {
  printf '%s\n' "$report" >&2
  fail "systemd-analyze security failed"
}
exposure="$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
[ -n "$exposure" ] || { printf '%s\n' "$report" >&2; fail "no exposure level in the report"; }
printf 'systemd-analyze security: exposure %s (limit %s)\n' "$exposure" "$MAX_EXPOSURE"
if awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e > m) }'; then
  printf '%s\n' "$report" | grep '✗' >&2 || true
  fail "exposure $exposure is above $MAX_EXPOSURE"
fi
