#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (address sanitizer on) and runs each
# for a set time on its committed seed corpus (Fuzz/corpus/<target>/) plus the
# inputs earlier runs found (.build-fuzz/corpus/<target>/, kept between runs),
# with Fuzz/dict/<target>.dict as libFuzzer's dictionary when there is one.
# Crash inputs go to Fuzz/crashes/<target>/ (git-ignored). See docs/fuzzing.md.
#
#   scripts/fuzz.sh [--seconds N] [target ...] [-- libFuzzer flags ...]
#
# Targets default to all (the folders in Fuzz/Sources/ named Fuzz*); each runs
# N seconds (default 60), niced. Exits non-zero when any target crashed or hung
# or the build failed; the last line is "N passed, N failed" (targets that ran
# clean vs not). Flags after -- go to every libFuzzer run (e.g. -- -fork=1
# -ignore_crashes=1 to keep going past a crash, -- -fork=2 for two processes).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds=60
targets=()
fuzzer_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    --) shift; fuzzer_flags=("$@"); break ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) log "unknown option $1"; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { log "--seconds takes a whole number above 0"; exit 2; }

FUZZ="$ROOT/Fuzz"
SCRATCH="$ROOT/.build-fuzz"
CRASHES="$FUZZ/crashes"
if [ "${#targets[@]}" -eq 0 ]; then
  for dir in "$FUZZ"/Sources/Fuzz*/; do
    name="$(basename "$dir")"
    [ "$name" = FuzzSupport ] || targets+=("$name")
  done
fi
for target in "${targets[@]}"; do
  [ -f "$FUZZ/Sources/$target/main.swift" ] || { log "no fuzz target $target (see Fuzz/Sources/)"; exit 2; }
done

# Debug: keeps -enable-testing for the @testable imports; Swift's overflow and
# bounds checks trap in every configuration, so nothing is lost but speed.
# lld: gold warns about every sanitizer symbol.
build_flags=(--package-path "$FUZZ" --scratch-path "$SCRATCH" -c debug
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld)
log "building fuzz targets: ${targets[*]}"
mkdir -p "$SCRATCH/logs"
build_log="$SCRATCH/logs/build.log"
: >"$build_log"
built=true
if [ "${#targets[@]}" -gt 1 ]; then
  # One build of the whole fuzz package: the targets share most modules.
  nice -n 10 swift build "${build_flags[@]}" >>"$build_log" 2>&1 || built=false
else
  nice -n 10 swift build "${build_flags[@]}" --product "${targets[0]}" >>"$build_log" 2>&1 || built=false
fi
if ! $built; then
  grep -E 'error:' "$build_log" | head -20 >&2
  log "the fuzz build failed (log $build_log)"
  echo "0 passed, ${#targets[@]} failed"
  exit 1
fi

# Swift's own crash backtracer reads memory the address sanitizer then
# reports; libFuzzer's report names the trap ("Swift runtime failure: ...") and the line.
export SWIFT_BACKTRACE=enable=no
passed=0
failed=0
for target in "${targets[@]}"; do
  mkdir -p "$SCRATCH/corpus/$target" "$CRASHES/$target"
  log_file="$SCRATCH/logs/$target.log"
  before="$(find "$CRASHES/$target" -type f | wc -l)"
  # The first corpus folder receives what the run finds; the committed seeds are only read.
  # -timeout: one input taking over 10 s is a hang, reported like a crash.
  dictionary=()
  [ -f "$FUZZ/dict/$target.dict" ] && dictionary=(-dict="$FUZZ/dict/$target.dict")
  status=0
  nice -n 10 "$SCRATCH/debug/$target" "$SCRATCH/corpus/$target" "$FUZZ/corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$CRASHES/$target/" ${dictionary[@]+"${dictionary[@]}"} ${fuzzer_flags[@]+"${fuzzer_flags[@]}"} >"$log_file" 2>&1 || status=$?
  last="$(grep -E '^#[0-9]+' "$log_file" | tail -1)"
  runs="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log_file" | tail -1)"
  coverage="$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1, ft \2/p' <<<"$last")"
  after="$(find "$CRASHES/$target" -type f | wc -l)"
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    log "$target: clean, ${runs:-? runs}, ${coverage:-no coverage line}"
  else
    failed=$((failed + 1))
    log "$target: FAILED (exit $status), $((after - before)) new crash file(s) in ${CRASHES#"$ROOT"/}/$target/, log $log_file:"
    grep -E -A1 'ERROR: |fuzzCheck failed|Fatal error|Swift runtime failure|Test unit written' "$log_file" \
      | grep -vE '^--$|^ *#[0-9]+ .* in (__sanitizer|fuzzer::)' | head -8 >&2
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
