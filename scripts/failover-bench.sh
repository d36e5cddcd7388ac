#!/usr/bin/env bash
# Failover figures on the three-node cluster (scripts/cluster.sh): for each
# scenario, RUNS runs of scripts/failover_run.py (three workers on different
# nodes, REQUESTS streamed requests in flight, one fault), then a table of the
# recovery time (fault -> every worker running with a consumer again, from the
# status files polled every 50 ms) p50/max and the reply checks. Exit 1 when a
# run lost a final, got a wrong content or chunks out of order.
#
#   ./scripts/failover-bench.sh [--runs N] [scenario...]
#   scenarios: leader-stop worker-node-stop reply-leader-stop kill9 rolling partition
#   (default: leader-stop worker-node-stop kill9 rolling)
#
# Environment: REQUESTS (1000), CONCURRENCY per worker (400; rolling: 60, so the
# requests outlast the three restarts), WORDS (12), INTERVAL_MS (500),
# CHATQUEUE_BUILD_CONFIGURATION (debug). Results: bench/results/failover-<stamp>/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=5
SCENARIOS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) log "unknown option $1"; exit 2 ;;
    *) SCENARIOS+=("$1") ;;
  esac
  shift
done
[ "${#SCENARIOS[@]}" -gt 0 ] || SCENARIOS=(leader-stop worker-node-stop kill9 rolling)

ulimit -n 65536 2>/dev/null || true
build
export CHATQUEUE_BIN
RESULTS="$ROOT/bench/results/failover-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RESULTS"
log "starting the cluster"
"$ROOT/scripts/cluster.sh" start

"$CHATQUEUE_BIN" mock-upstream --port 0 --threads 1 2> "$RESULTS/mock-upstream.log" &
MOCK_PID=$!
trap 'stop_pid $MOCK_PID' EXIT
UPSTREAM_URL=""
for _ in $(seq 1 100); do
  UPSTREAM_URL="$(grep -o 'http://[^ ]*' "$RESULTS/mock-upstream.log" 2>/dev/null || true)"
  [ -n "$UPSTREAM_URL" ] && break
  sleep 0.1
done
[ -n "$UPSTREAM_URL" ] || { log "mock upstream did not start"; exit 1; }
export UPSTREAM_URL

FAILED=0
for scenario in "${SCENARIOS[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    log "$scenario run $run"
    concurrency="${CONCURRENCY:-400}"
    [ "$scenario" = rolling ] && concurrency="${CONCURRENCY:-60}"
    if ! CONCURRENCY="$concurrency" /usr/bin/python3 "$ROOT/scripts/failover_run.py" "$scenario" \
      "$RESULTS/$scenario-$run" | tee -a "$RESULTS/runs.jsonl"; then
      FAILED=1
    fi
  done
done

/usr/bin/python3 - "$RESULTS/runs.jsonl" <<'PY' | tee "$RESULTS/report.md"
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| scenario | runs | recovery p50 ms | recovery max ms | missing finals | wrong | out of order | duplicate finals | redelivered | completed p50 s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for scenario in dict.fromkeys(r["scenario"] for r in runs):
    rs = [r for r in runs if r["scenario"] == scenario]
    rec = [ms for r in rs for ms in r["recovery_ms"]]
    total = lambda key: sum(r[key] for r in rs)
    print(f"| {scenario} | {len(rs)} | {statistics.median(rec):.0f} | {max(rec)} | {total('missing_final')} | "
          f"{total('wrong_content') + total('chunk_gaps')} | {total('order_violations')} | {total('duplicate_finals')} | "
          f"{total('redelivered')} | {statistics.median(r['completed_s'] for r in rs):.1f} |")
bad = sum(r["missing_final"] + r["wrong_content"] + r["order_violations"] + r["chunk_gaps"] for r in runs)
sys.exit(1 if bad else 0)
PY
[ "${PIPESTATUS[0]}" -eq 0 ] || FAILED=1
exit "$FAILED"
