#!/usr/bin/env bash
# The benchmark: builds chatqueue (release), starts the mock upstream, and for
# each scenario starts a fresh worker (or the echo ceiling) on a fresh queue,
# drives it with `chatqueue bench`, and stops it. Writes
# bench/results/<UTC timestamp>/{report.md,report.json} (plus one JSON file and
# the logs per run) and prints the Markdown report: every figure next to its
# target. See docs/performance.md.
#
#   ./scripts/bench.sh                 # every scenario, full counts (about a minute of load on 2 cores)
#   ./scripts/bench.sh --smoke         # tiny counts, debug build: proves the harness works
#   ./scripts/bench.sh nonstream stream   # only these runs (labels below)
#   ./scripts/bench.sh latency-c1 latency-c16   # only the added-latency runs
#
# Runs (labels): ceiling, nonstream, nonstream-c32, stream, slowstreams, slowstreams-5000,
# latency-c1, latency-c16.
# Exit status 1 when a run lost requests or got errors; missed performance
# targets are reported, not fatal (the machine may be busy).
#
# Environment: CHATQUEUE_BENCH_BROKER_URL (default the local guest broker),
# CHATQUEUE_SCRATCH_PATH (SwiftPM scratch path, default .build).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SMOKE=0
SELECTED=()
for argument in "$@"; do
  case "$argument" in
    --smoke) SMOKE=1 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) log "unknown option $argument"; exit 2 ;;
    *) SELECTED+=("$argument") ;;
  esac
done

bench_prepare

# The mock upstream in its fixed-response mode: every answer is the same 48
# words, rendered once, sent at once without parsing the request; requests with
# a "mock" object (slowstreams: 100 ms pacing, send stamps) are scripted as usual.
"$BIN" mock-upstream --port 0 --threads 2 --words 48 --fixed-response 2> "$RESULTS/logs/mock-upstream.log" &
MOCK_PID=$!
STARTED_PIDS+=("$MOCK_PID")
UPSTREAM_URL=""
for _ in $(seq 1 100); do
  UPSTREAM_URL="$(grep -o 'http://[^ ]*' "$RESULTS/logs/mock-upstream.log" 2>/dev/null || true)"
  [ -n "$UPSTREAM_URL" ] && break
  kill -0 "$MOCK_PID" 2>/dev/null || { log "mock upstream exited"; cat "$RESULTS/logs/mock-upstream.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$UPSTREAM_URL" ] || { log "mock upstream did not start"; exit 1; }
log "mock upstream at $UPSTREAM_URL (pid $MOCK_PID)"

FAILED=0
# run LABEL SCENARIO worker|echo WORKER_CONCURRENCY [bench options...]
run() {
  local label="$1" scenario="$2" kind="$3" worker_concurrency="$4"
  shift 4
  if [ "${#SELECTED[@]}" -gt 0 ] && [[ ! " ${SELECTED[*]} " == *" $label "* ]]; then return 0; fi
  local queue="bench.$label.$STAMP" pid
  log "run $label: $scenario against $kind (concurrency $worker_concurrency) $*"
  if [ "$kind" = echo ]; then
    "$BIN" bench-echo --broker-url "$BROKER_URL" --queue "$queue" --concurrency "$worker_concurrency" \
      2> "$RESULTS/logs/$label.echo.log" &
  else
    "$BIN" worker --broker-url "$BROKER_URL" --queue "$queue" --upstream-url "$UPSTREAM_URL" \
      --set queue.type=classic --set worker.concurrency="$worker_concurrency" --set log.level=warning --set log.request_summary=off \
      2> "$RESULTS/logs/$label.worker.log" &
  fi
  pid=$!
  STARTED_PIDS+=("$pid")
  if ! "$BIN" bench --broker-url "$BROKER_URL" --queue "$queue" --scenario "$scenario" --label "$label" \
    --worker-pid "$pid" --upstream-pid "$MOCK_PID" --json-out "$RESULTS/$label.json" "$@" \
    > "$RESULTS/logs/$label.md" 2> "$RESULTS/logs/$label.bench.log"; then
    log "run $label: not every request completed (see $RESULTS/logs/$label.bench.log)"
    FAILED=1
  fi
  stop_pid "$pid"
  "$BIN" bench-cleanup --broker-url "$BROKER_URL" --queue "$queue" || true
  sleep 2  # let the broker settle (queue deletion, GC) before the next run
}

# run_latency LABEL CONCURRENCY [bench options...]: the latency scenario
# against a fresh worker (worker.concurrency 32, the default) and a fresh echo,
# each on its own queue; the generator also calls the mock directly.
run_latency() {
  local label="$1" concurrency="$2"
  shift 2
  if [ "${#SELECTED[@]}" -gt 0 ] && [[ ! " ${SELECTED[*]} " == *" $label "* ]]; then return 0; fi
  local queue="bench.$label.$STAMP" echo_queue="bench.$label-echo.$STAMP" worker_pid echo_pid
  log "run $label: latency at concurrency $concurrency $*"
  "$BIN" worker --broker-url "$BROKER_URL" --queue "$queue" --upstream-url "$UPSTREAM_URL" \
    --set queue.type=classic --set worker.concurrency=32 --set log.level=warning --set log.request_summary=off \
    2> "$RESULTS/logs/$label.worker.log" &
  worker_pid=$!
  STARTED_PIDS+=("$worker_pid")
  "$BIN" bench-echo --broker-url "$BROKER_URL" --queue "$echo_queue" --concurrency 32 \
    2> "$RESULTS/logs/$label.echo.log" &
  echo_pid=$!
  STARTED_PIDS+=("$echo_pid")
  if ! "$BIN" bench --broker-url "$BROKER_URL" --queue "$queue" --scenario latency --label "$label" \
    --concurrency "$concurrency" --upstream-url "$UPSTREAM_URL" --echo-queue "$echo_queue" \
    --worker-pid "$worker_pid" --upstream-pid "$MOCK_PID" --json-out "$RESULTS/$label.json" "$@" \
    > "$RESULTS/logs/$label.md" 2> "$RESULTS/logs/$label.bench.log"; then
    log "run $label: not every request completed (see $RESULTS/logs/$label.bench.log)"
    FAILED=1
  fi
  stop_pid "$worker_pid"
  stop_pid "$echo_pid"
  "$BIN" bench-cleanup --broker-url "$BROKER_URL" --queue "$queue" || true
  "$BIN" bench-cleanup --broker-url "$BROKER_URL" --queue "$echo_queue" || true
  sleep 2
}

LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$SMOKE" -eq 1 ]; then
  run ceiling ceiling echo 8 --requests 20 --concurrency 8
  run nonstream nonstream worker 8 --requests 20 --concurrency 8
  run nonstream-c32 nonstream worker 32 --requests 20 --concurrency 32
  run stream stream worker 8 --requests 5 --concurrency 5 --words 6
  run slowstreams slowstreams worker 8 --requests 5 --words 3 --interval-ms 10
  run_latency latency-c1 1 --requests 4 --words 3 --interval-ms 5 --rounds 2
  run_latency latency-c16 16 --requests 32 --words 3 --interval-ms 5 --rounds 2
else
  run ceiling ceiling echo 64 --requests 20000 --concurrency 64
  run nonstream nonstream worker 64 --requests 20000 --concurrency 64
  run nonstream-c32 nonstream worker 32 --requests 20000 --concurrency 32
  run stream stream worker 64 --requests 2000 --concurrency 64
  run slowstreams slowstreams worker 1000 --requests 1000 --concurrency 1000
  run slowstreams-5000 slowstreams worker 5000 --requests 5000 --concurrency 5000
  run_latency latency-c1 1 --requests 200
  run_latency latency-c16 16 --requests 1600
fi

RABBITMQ_VERSION="$(as_root rabbitmq-diagnostics -q server_version 2>/dev/null | tail -n 1 || true)"
NOTES=("Run $STAMP ($CONFIGURATION build); load average at start: $LOAD_AT_START; file descriptor limit $(ulimit -n).")
[ "$SMOKE" -eq 1 ] && NOTES+=("Smoke run: tiny counts on a debug build. The figures mean nothing; only completeness counts.")
NOTE_ARGS=()
for note in "${NOTES[@]}"; do NOTE_ARGS+=(--note "$note"); done
"$BIN" bench-report "$RESULTS" --rabbitmq-version "${RABBITMQ_VERSION:-unknown}" "${NOTE_ARGS[@]}" || FAILED=1
log "results in $RESULTS"
exit "$FAILED"
