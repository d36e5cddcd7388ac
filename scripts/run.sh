#!/usr/bin/env bash
# The main job: installs what is missing, starts RabbitMQ, builds chatqueue,
# starts a worker against the mock upstream (or the real API when
# CHATQUEUE_UPSTREAM_API_KEY or upstream.api_key in CHATQUEUE_CONFIG is set),
# streams the answer to a sample request, then keeps the worker serving in the
# foreground until Ctrl-C.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_packages
start_rabbitmq
build

config_args=()
if [ -n "${CHATQUEUE_CONFIG:-}" ]; then config_args=(--config "$CHATQUEUE_CONFIG"); fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

has_key=false
if [ -n "${CHATQUEUE_UPSTREAM_API_KEY:-}" ] || [ -n "${CHATQUEUE_UPSTREAM_API_KEY_FILE:-}" ]; then has_key=true; fi
if [ -n "${CHATQUEUE_CONFIG:-}" ] && grep -Eq '^\s*api_key(_file)?:\s*\S' "$CHATQUEUE_CONFIG"; then has_key=true; fi

worker_args=(worker "${config_args[@]}")
if [ "$has_key" = false ]; then
  port="${CHATQUEUE_MOCK_PORT:-8089}"
  log "no API key configured: starting the mock upstream on port $port"
  "$CHATQUEUE_BIN" mock-upstream --port "$port" --chunk-interval-ms 40 &
  pids+=($!)
  worker_args+=(--upstream-url "http://127.0.0.1:$port")
fi

log "starting the worker"
status_file="$ROOT/.build/run-status.json"
rm -f "$status_file"
CHATQUEUE_STATUS_FILE="$status_file" "$CHATQUEUE_BIN" "${worker_args[@]}" &
worker_pid=$!
pids+=("$worker_pid")
# Wait until it consumes (it declares the queue first): a request sent before would have no queue.
for _ in $(seq 1 120); do
  "$CHATQUEUE_BIN" health --status-file "$status_file" >/dev/null 2>&1 && break
  kill -0 "$worker_pid" 2>/dev/null || { log "the worker exited"; exit 1; }
  sleep 0.5
done

log "sending a sample request"
"$CHATQUEUE_BIN" send "${config_args[@]}" --timeout 120 \
  --system "You are a concise assistant." "Say hello to chatqueue in one sentence."

log "the worker keeps serving (pid $worker_pid); try: $CHATQUEUE_BIN send \"your question\"; Ctrl-C stops it"
wait "$worker_pid"
