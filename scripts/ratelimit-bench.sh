#!/usr/bin/env bash
# The rate-limited upstream measurement (issue 12, the AIMD window): several
# workers against one `chatqueue mock-upstream --max-concurrent K` that answers
# 429 (Retry-After: 1) above K requests in progress, each answer taking
# --latency-ms. For each window setting (CHATQUEUE_UPSTREAM_ADAPTIVE_CONCURRENCY
# false, then true) it starts a fresh mock and fresh workers on a fresh queue,
# loads them with `chatqueue bench` (nonstream), samples the mock's
# GET /_mock/statistics every second, and writes per second 200s, 429s and the
# peak in progress, plus totals (throughput, 429 share, upstream tries per
# request, time, error replies) to bench/results/<UTC stamp>/ratelimit.md
# (raw samples, bench JSON and logs beside it). See docs/performance.md.
#
#   ./scripts/ratelimit-bench.sh            # release build, 3000 requests, K=8, 200 ms answers
#   ./scripts/ratelimit-bench.sh --smoke    # debug build, tiny counts: proves the harness works
#   ./scripts/ratelimit-bench.sh --requests 1000 --max-concurrent 4 --latency-ms 100 --workers 3
#
# Options: --requests N, --max-concurrent K, --latency-ms MS, --workers W,
# --worker-concurrency C (worker.concurrency, default 32), --generator-concurrency G
# (requests the generator keeps in flight, default 300), --modes "false true".
# The workers retry 429s (CHATQUEUE_RETRY_MAX_ATTEMPTS, default 50 here, so the
# 429s do not fail requests); any other CHATQUEUE_* variable set in the
# environment reaches them too. Exit status 1 when a run lost requests or got
# error replies. Needs python3 (standard library only): scripts/ratelimit_stats.py
# samples the mock and writes the table.
#
# Environment: CHATQUEUE_BENCH_BROKER_URL (default the local guest broker),
# CHATQUEUE_SCRATCH_PATH (SwiftPM scratch path, default .build).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SMOKE=0
REQUESTS=3000
MAX_CONCURRENT=8
LATENCY_MS=200
WORKERS=3
WORKER_CONCURRENCY=32
GENERATOR_CONCURRENCY=300
MODES="false true"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1; REQUESTS=60; MAX_CONCURRENT=4; LATENCY_MS=100; GENERATOR_CONCURRENCY=60 ;;
    --requests) REQUESTS="$2"; shift ;;
    --max-concurrent) MAX_CONCURRENT="$2"; shift ;;
    --latency-ms) LATENCY_MS="$2"; shift ;;
    --workers) WORKERS="$2"; shift ;;
    --worker-concurrency) WORKER_CONCURRENCY="$2"; shift ;;
    --generator-concurrency) GENERATOR_CONCURRENCY="$2"; shift ;;
    --modes) MODES="$2"; shift ;;
    -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument $1 (see --help)"; exit 2 ;;
  esac
  shift
done
export CHATQUEUE_RETRY_MAX_ATTEMPTS="${CHATQUEUE_RETRY_MAX_ATTEMPTS:-50}"

command -v python3 >/dev/null || { log "python3 is not on PATH (sampling and the report need it)"; exit 1; }
bench_prepare

STATS="$ROOT/scripts/ratelimit_stats.py"
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
FAILED=0
for mode in $MODES; do
  queue="ratelimit.$mode.$STAMP"
  log "run adaptive_concurrency=$mode: $WORKERS workers x $WORKER_CONCURRENCY, mock K=$MAX_CONCURRENT, $LATENCY_MS ms, $REQUESTS requests"
  mock_log="$RESULTS/logs/$mode.mock-upstream.log"
  "$BIN" mock-upstream --port 0 --words 48 --fixed-response --latency-ms "$LATENCY_MS" \
    --max-concurrent "$MAX_CONCURRENT" 2> "$mock_log" &
  mock_pid=$!
  STARTED_PIDS+=("$mock_pid")
  upstream_url=""
  for _ in $(seq 1 100); do
    upstream_url="$(grep -o 'http://[^ ]*' "$mock_log" 2>/dev/null || true)"
    [ -n "$upstream_url" ] && break
    kill -0 "$mock_pid" 2>/dev/null || { log "mock upstream exited"; cat "$mock_log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$upstream_url" ] || { log "mock upstream did not start"; exit 1; }

  worker_pids=()
  for index in $(seq 1 "$WORKERS"); do
    CHATQUEUE_UPSTREAM_ADAPTIVE_CONCURRENCY="$mode" "$BIN" worker --broker-url "$BROKER_URL" --queue "$queue" \
      --upstream-url "$upstream_url" --set queue.type=classic --set worker.concurrency="$WORKER_CONCURRENCY" \
      --set log.level=warning 2> "$RESULTS/logs/$mode.worker$index.log" &
    worker_pids+=("$!")
    STARTED_PIDS+=("$!")
  done

  stop_file="$RESULTS/logs/$mode.sampler.stop"
  python3 "$STATS" sample "$upstream_url" "$stop_file" "$RESULTS/$mode.samples.jsonl" 2> "$RESULTS/logs/$mode.sampler.log" &
  sampler_pid=$!
  STARTED_PIDS+=("$sampler_pid")

  if ! "$BIN" bench --broker-url "$BROKER_URL" --queue "$queue" --scenario nonstream --label "adaptive-$mode" \
    --requests "$REQUESTS" --concurrency "$GENERATOR_CONCURRENCY" --idle-timeout 120 --quiet \
    --json-out "$RESULTS/$mode.bench.json" > "$RESULTS/logs/$mode.bench.md" 2> "$RESULTS/logs/$mode.bench.log"; then
    log "run adaptive_concurrency=$mode: not every request completed without an error (see $RESULTS/logs/$mode.bench.log)"
    FAILED=1
  fi

  touch "$stop_file"
  wait "$sampler_pid" 2>/dev/null || true
  python3 "$STATS" fetch "$upstream_url" > "$RESULTS/$mode.statistics.json" || FAILED=1
  for pid in "${worker_pids[@]}"; do stop_pid "$pid"; done
  stop_pid "$mock_pid"
  "$BIN" bench-cleanup --broker-url "$BROKER_URL" --queue "$queue" || true
done

# shellcheck disable=SC2086
python3 "$STATS" report "$RESULTS" "Run $STAMP ($CONFIGURATION build): $REQUESTS nonstream requests, $WORKERS workers \
with worker.concurrency $WORKER_CONCURRENCY and retry.max_attempts $CHATQUEUE_RETRY_MAX_ATTEMPTS; the mock answers \
after $LATENCY_MS ms and with 429 (Retry-After: 1) above $MAX_CONCURRENT requests in progress; load average at \
start $LOAD_AT_START." $MODES > "$RESULTS/ratelimit.md" || FAILED=1
[ "$SMOKE" -eq 1 ] && printf '\nSmoke run: tiny counts on a debug build. The figures mean nothing; only completeness counts.\n' >> "$RESULTS/ratelimit.md"
cat "$RESULTS/ratelimit.md"
log "results in $RESULTS"
exit "$FAILED"
