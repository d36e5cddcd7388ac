#!/usr/bin/env bash
# The test command: installs what is missing, starts RabbitMQ, builds and runs
# every test (unit and integration: real broker, real worker processes, the
# mock upstream, and the Python example client), after checking the systemd
# unit (scripts/check-systemd.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_packages
start_rabbitmq
# A second broker node that the fault-injection tests may stop and reach over TLS.
log "starting the fault-injection broker node"
"$ROOT/scripts/fault-broker.sh" start
while IFS= read -r line; do export "$line"; done < <("$ROOT/scripts/fault-broker.sh" env)
build
log "checking the systemd unit"
bash "$ROOT/scripts/check-systemd.sh" "$CHATQUEUE_BIN"
cd "$ROOT"
log "running the tests"
swift test "$@"
