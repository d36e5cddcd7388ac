#!/usr/bin/env bash
# The test command: installs what is missing, starts RabbitMQ, builds and runs
# every test (unit and integration: real broker, real worker processes, the
# mock upstream, and the Python example client), after checking the systemd
# unit (scripts/check-systemd.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_packages
start_rabbitmq
build
log "checking the systemd unit"
bash "$ROOT/scripts/check-systemd.sh" "$CHATQUEUE_BIN"
cd "$ROOT"
log "running the tests"
swift test "$@"
