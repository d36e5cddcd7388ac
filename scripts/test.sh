#!/usr/bin/env bash
# The test command: installs what is missing, starts RabbitMQ, builds and runs
# every test (unit and integration: real broker, real worker processes, the
# mock upstream, the Python example client, and node failures on a three-node
# cluster, scripts/cluster.sh), after checking the systemd
# unit (scripts/check-systemd.sh), after a brief fuzz run of CI_FUZZ_TARGETS
# (scripts/fuzz.sh, docs/fuzzing.md): CHATQUEUE_FUZZ_SECONDS per target,
# default 10 when no arguments are given (a filtered run skips it); 0 skips it.
# After the tests, a full run (no arguments) also runs the boot test
# (scripts/systemd-test.sh: the .deb installed and run by a real systemd in an
# isolated root) when it runs as root with CAP_SYS_ADMIN, else says why it
# did not; CHATQUEUE_BOOT_TEST=0 skips it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The fuzz targets CI runs (all of them; a target whose known findings are not
# fixed yet stays out of this list until they are).
CI_FUZZ_TARGETS=(FuzzJSON FuzzSSE FuzzRequestValidator FuzzRequestMetadata FuzzRetryAfter FuzzUpstreamResponse
  FuzzRequestStateMachine FuzzCancelsAndRoutes)

# The boot test: is it wanted, and can it run here?
boot_test_skip=""
if [ $# -ne 0 ]; then
  boot_test_skip="a filtered run"
elif [ "${CHATQUEUE_BOOT_TEST:-1}" = 0 ]; then
  boot_test_skip="CHATQUEUE_BOOT_TEST=0"
elif [ "$(id -u)" -ne 0 ]; then
  boot_test_skip="not root"
elif ! (( (16#$(sed -n 's/^CapEff:\s*//p' /proc/self/status) >> 21) & 1 )); then
  boot_test_skip="no CAP_SYS_ADMIN"
fi
if [ -z "$boot_test_skip" ]; then
  # dpkg-dev: dpkg-shlibdeps; binutils: strip; debootstrap, systemd-container: the isolated root.
  APT_PACKAGES+=(dpkg-dev binutils lintian debootstrap systemd-container)
fi

install_packages
start_rabbitmq
# A second broker node that the fault-injection tests may stop and reach over TLS.
log "starting the fault-injection broker node"
"$ROOT/scripts/fault-broker.sh" start
while IFS= read -r line; do export "$line"; done < <("$ROOT/scripts/fault-broker.sh" env)
# Three clustered nodes for the failover suite (about 40 s the first time).
log "starting the three-node cluster"
"$ROOT/scripts/cluster.sh" start
while IFS= read -r line; do export "$line"; done < <("$ROOT/scripts/cluster.sh" env)
build
log "checking the systemd unit"
bash "$ROOT/scripts/check-systemd.sh" "$CHATQUEUE_BIN"
cd "$ROOT"
# The brief fuzz run goes first and the tests after it, so the test runner's
# summary is the last one (the boot test's closing line counts checks, not
# tests); a fuzz failure still fails the command.
if [ $# -eq 0 ]; then fuzz_seconds="${CHATQUEUE_FUZZ_SECONDS:-10}"; else fuzz_seconds="${CHATQUEUE_FUZZ_SECONDS:-0}"; fi
fuzz_status=0
if [ "$fuzz_seconds" != 0 ]; then
  log "fuzzing ${CI_FUZZ_TARGETS[*]} for $fuzz_seconds s each"
  "$ROOT/scripts/fuzz.sh" --seconds "$fuzz_seconds" "${CI_FUZZ_TARGETS[@]}" || fuzz_status=$?
fi
log "running the tests"
swift test "$@"
if [ -z "$boot_test_skip" ]; then
  log "boot test: packaging, then the package under a real systemd (scripts/systemd-test.sh)"
  "$ROOT/scripts/systemd-test.sh"
else
  log "boot test not run ($boot_test_skip): it needs root with CAP_SYS_ADMIN and no test.sh arguments"
fi
if [ "$fuzz_status" -ne 0 ]; then
  log "the fuzz run failed (see above and .build-fuzz/logs/)"
  exit "$fuzz_status"
fi
