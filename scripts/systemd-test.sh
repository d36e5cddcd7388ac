#!/usr/bin/env bash
# The boot test: installs the chatqueue .deb into a minimal Debian bookworm
# tree, boots a real systemd in it (systemd-nspawn --boot, private network:
# loopback only) and checks the worker units as an operator runs them: start,
# status, dynamic user, credential, status file, health, requests, journal,
# restart after kill -9, the watchdog, draining stop, the sandbox. Prints one
# PASS/FAIL line per check and exits 1 on any FAIL.
#
#   scripts/systemd-test.sh                 # package (scripts/package-deb.sh), then test
#   scripts/systemd-test.sh --deb PATH      # test this package
#   scripts/systemd-test.sh --keep          # leave the container's tree after the run
#
# Needs root with CAP_SYS_ADMIN; installs debootstrap and systemd-container
# when missing. Everything lives in .systemd-test/ (git-ignored): cache/ holds
# the debootstrapped tree with systemd, dbus and rabbitmq-server installed (a
# tarball, made once: later runs skip debootstrap and apt), root/ the booted
# tree, logs/ the container's journal. Nothing touches the machine's own
# /tmp, /run or services: systemd-nspawn runs in a private mount namespace
# with its own /tmp and /run, and the container has its own network
# namespace. The one change made for the test: a drop-in sets WatchdogSec=5
# (the unit's 30 s would only make the watchdog check slower).
#
# Environment: CHATQUEUE_SYSTEMD_TEST_DIR (default .systemd-test),
# CHATQUEUE_DEBIAN_MIRROR (default: the first URI of the machine's Debian
# sources, else http://deb.debian.org/debian).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUITE=bookworm
# Installed into the cached tree; the package's own Depends are installed by apt from its .deb.
BASE_PACKAGES=(systemd systemd-sysv dbus ca-certificates rabbitmq-server librabbitmq4 libcurl4 util-linux procps)
# Bump when the way the cached tree is made changes.
CACHE_FORMAT=1
TEST_DIR="${CHATQUEUE_SYSTEMD_TEST_DIR:-$ROOT/.systemd-test}"
MOCK_PORT=18080
MACHINE=chatqueue-boot-test
# Limit for `systemd-analyze security` on the live unit, as scripts/check-systemd.sh.
MAX_EXPOSURE=2.0

deb=""
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb="${2:?--deb needs a path}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument $1"; exit 2 ;;
  esac
done

# ---------------------------------------------------------------- set-up

[ "$(id -u)" -eq 0 ] || { log "the boot test needs root"; exit 1; }
# CAP_SYS_ADMIN is bit 21 of the effective capabilities.
cap_eff="$(sed -n 's/^CapEff:\s*//p' /proc/self/status)"
(( (16#$cap_eff >> 21) & 1 )) || { log "the boot test needs CAP_SYS_ADMIN"; exit 1; }

install_apt_packages debootstrap systemd-container util-linux

mirror="${CHATQUEUE_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $0 ~ /debian/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' || true)"
fi
if [ -z "$mirror" ]; then
  mirror="$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    head -n 1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

if [ -z "$deb" ]; then
  deb="$("$ROOT/scripts/package-deb.sh")"
fi
[ -f "$deb" ] || { log "$deb: no such package"; exit 1; }
deb="$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")"

CACHE="$TEST_DIR/cache"
TREE="$TEST_DIR/root"
LOGS="$TEST_DIR/logs"
mkdir -p "$CACHE" "$LOGS"

# Runs systemd-nspawn in a private mount namespace whose /tmp and /run are
# fresh tmpfs mounts: nspawn keeps its scratch folders there, and so they never
# reach the machine's own. --register=no --keep-unit: no machined, no scope
# from the machine's service manager.
# The fresh /tmp would hide the test folder when the clone lives under /tmp
# (as CI's may): the folder is bound aside first and back in after.
export CQ_TEST_DIR="$TEST_DIR"
PRIVATE_MOUNTS='mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/.cq-test && mount --rbind "$CQ_TEST_DIR" /run/.cq-test && mount -t tmpfs -o mode=1777 tmpfs /tmp && mkdir -p "$CQ_TEST_DIR" && mount --rbind /run/.cq-test "$CQ_TEST_DIR" && exec systemd-nspawn "$@"'
nspawn() {
  unshare --mount --propagation private -- bash -c "$PRIVATE_MOUNTS" \
    nspawn --quiet --register=no --keep-unit "$@"
}

# Removes a tree made here; --one-file-system never follows a mount that a
# failed run might have left inside it.
remove_tree() {
  local tree="$1"
  [ -d "$tree" ] || return 0
  if findmnt -rno TARGET | grep -q "^$tree\(/\|$\)"; then
    log "$tree has mounts inside; unmount them first:"; findmnt -rno TARGET | grep "^$tree\(/\|$\)" >&2; exit 1
  fi
  rm -rf --one-file-system "$tree"
}

cache_key="$(printf '%s\n' "$CACHE_FORMAT" "$SUITE" "${BASE_PACKAGES[@]}" | sha256sum | cut -c1-12)"
tarball="$CACHE/$SUITE-$cache_key.tar"
if [ ! -f "$tarball" ]; then
  started=$SECONDS
  base="$TEST_DIR/base"
  remove_tree "$base"
  log "debootstrap $SUITE from $mirror (once; cached as $(basename "$tarball"))"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus "$SUITE" "$base" "$mirror" >"$LOGS/debootstrap.log" 2>&1 ||
    { tail -n 20 "$LOGS/debootstrap.log" >&2; log "debootstrap failed (log: $LOGS/debootstrap.log)"; exit 1; }
  # Services installed now must not start (there is no systemd running yet anyway).
  printf '#!/bin/sh\nexit 101\n' >"$base/usr/sbin/policy-rc.d"
  chmod 0755 "$base/usr/sbin/policy-rc.d"
  log "installing ${BASE_PACKAGES[*]} into the tree"
  nspawn --directory="$base" --resolv-conf=copy-host --setenv=DEBIAN_FRONTEND=noninteractive -- \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${BASE_PACKAGES[*]} && apt-get clean" \
    >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; log "apt-get in the tree failed (log: $LOGS/apt.log)"; exit 1; }
  tar -C "$base" --numeric-owner --xattrs -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  remove_tree "$base"
  log "cached tree made in $((SECONDS - started)) s"
fi

remove_tree "$TREE"
mkdir -p "$TREE"
tar -C "$TREE" --numeric-owner --xattrs -xf "$tarball"

# The package, installed by apt from the .deb (its Depends from the tree's
# packages, or fetched when one is missing).
cp "$deb" "$TREE/root/"
log "installing $(basename "$deb") in the tree"
nspawn --directory="$TREE" --resolv-conf=copy-host --setenv=DEBIAN_FRONTEND=noninteractive -- \
  apt-get install -y -qq --no-install-recommends "/root/$(basename "$deb")" >"$LOGS/install.log" 2>&1 ||
  { tail -n 20 "$LOGS/install.log" >&2; log "installing the package failed (log: $LOGS/install.log)"; exit 1; }
rm -f "$TREE/usr/sbin/policy-rc.d"

# What an operator does after installing: the key, the upstream's URL.
secret="sk-boot-test-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
install -m 0600 /dev/stdin "$TREE/etc/chatqueue/upstream.api_key" <<<"$secret"
sed -i "s#^  url: \"https://api.deepseek.com\"#  url: \"http://127.0.0.1:$MOCK_PORT\"#" "$TREE/etc/chatqueue/chatqueue.yaml"
grep -q "^  url: \"http://127.0.0.1:$MOCK_PORT\"" "$TREE/etc/chatqueue/chatqueue.yaml" ||
  { log "could not set upstream.url in /etc/chatqueue/chatqueue.yaml"; exit 1; }

# The test's own pieces: the mock upstream as a unit (it demands the key, so a
# worker that did not read its credential gets 401s), the shorter watchdog.
install -d "$TREE/etc/chatqueue-test"
install -m 0600 /dev/stdin "$TREE/etc/chatqueue-test/mock.api_key" <<<"$secret"
cat >"$TREE/usr/local/sbin/chatqueue-test-mock-upstream" <<EOF
#!/bin/sh
exec /usr/bin/chatqueue mock-upstream --host 127.0.0.1 --port $MOCK_PORT --words 12 \\
  --require-api-key "\$(cat "\$CREDENTIALS_DIRECTORY/key")"
EOF
chmod 0755 "$TREE/usr/local/sbin/chatqueue-test-mock-upstream"
cat >"$TREE/etc/systemd/system/chatqueue-mock-upstream.service" <<EOF
[Unit]
Description=chatqueue mock upstream (boot test)
Before=chatqueue-worker.target

[Service]
LoadCredential=key:/etc/chatqueue-test/mock.api_key
ExecStart=/usr/local/sbin/chatqueue-test-mock-upstream
DynamicUser=yes

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/chatqueue-mock-upstream.service \
  "$TREE/etc/systemd/system/multi-user.target.wants/chatqueue-mock-upstream.service"
install -d "$TREE/etc/systemd/system/chatqueue-worker@.service.d"
cat >"$TREE/etc/systemd/system/chatqueue-worker@.service.d/boot-test.conf" <<'EOF'
# Boot test only: the watchdog check waits 5 s instead of 30 s.
[Service]
WatchdogSec=5
EOF
# A quiet minimal boot: no consoles to serve, no apt timers.
for unit in console-getty.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  fstrim.timer systemd-networkd-wait-online.service; do
  ln -sf /dev/null "$TREE/etc/systemd/system/$unit"
done
printf '%s\n' "$MACHINE" >"$TREE/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' "$MACHINE" >"$TREE/etc/hosts"

# ---------------------------------------------------------------- boot

log "booting systemd in $TREE (private network)"
# Not through nspawn(): $! must be systemd-nspawn itself (unshare and bash exec it), the container's parent.
unshare --mount --propagation private -- bash -c "$PRIVATE_MOUNTS" \
  nspawn --quiet --register=no --keep-unit --directory="$TREE" --boot --private-network --machine="$MACHINE" \
  --console=passive --link-journal=no >"$LOGS/nspawn.log" 2>&1 &
NSPAWN_PID=$!
LEADER=""

shutdown_container() {
  [ -n "${NSPAWN_PID:-}" ] || return 0
  if kill -0 "$NSPAWN_PID" 2>/dev/null; then
    if [ -n "$LEADER" ]; then
      ct journalctl --no-pager -o short-monotonic >"$LOGS/journal.txt" 2>&1 || true
      kill -s SIGRTMIN+4 "$LEADER" 2>/dev/null || true   # systemd: orderly poweroff
    fi
    for _ in $(seq 1 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
      [ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null || true
      kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
  fi
  wait "$NSPAWN_PID" 2>/dev/null || true
  NSPAWN_PID=""
  [ "$keep" -eq 1 ] || remove_tree "$TREE"
}
trap shutdown_container EXIT

wait_until() { # wait_until SECONDS COMMAND...: polls every 0.5 s
  local limit=$(( $1 * 2 ))
  shift
  for _ in $(seq 1 "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  "$@"
}
# Runs a command in the container (all its namespaces, a clean environment).
ct() {
  nsenter --target "$LEADER" --all -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

# The checks' `bash -c` scripts call these too.
export -f ct wait_until

for _ in $(seq 1 100); do
  LEADER="$(pgrep -P "$NSPAWN_PID" -x systemd || true)"
  export LEADER
  [ -n "$LEADER" ] && break
  kill -0 "$NSPAWN_PID" 2>/dev/null || break
  sleep 0.2
done
[ -n "$LEADER" ] || { cat "$LOGS/nspawn.log" >&2; log "systemd did not start in the container"; exit 1; }
boot_started=$SECONDS
state=""
for _ in $(seq 1 240); do
  state="$(ct systemctl is-system-running 2>/dev/null || true)"
  case "$state" in running|degraded) break ;; esac
  sleep 0.5
done
log "boot finished: $state in $((SECONDS - boot_started)) s"

# ---------------------------------------------------------------- checks

passed=0
failed=0
pass() { printf 'PASS  %s\n' "$1"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %s: %s\n' "$1" "$2"; failed=$((failed + 1)); }
# check NAME COMMAND...: PASS when the command succeeds, else FAIL with its last output line.
check() {
  local name="$1" output
  shift
  if output="$("$@" 2>&1)"; then pass "$name"; else fail "$name" "$(printf '%s' "$output" | tail -n 3 | tr '\n' ' ')"; fi
}

prop() { ct systemctl show -P "$2" "$1"; }
main_pid() { prop "chatqueue-worker@$1" MainPID; }
status_json() { ct cat "/run/chatqueue-worker-$1/status.json" 2>/dev/null || true; }
# status_number N KEY: the first number under KEY in worker N's status file (empty when there is none).
status_number() { status_json "$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2; }

check "boot: system $state, network private (loopback only, up)" bash -c '
  case "$1" in running|degraded) ;; *) echo "state $1"; exit 1 ;; esac
  ifaces="$(nsenter --target "$2" --net --mount -- ls /sys/class/net)"
  [ "$ifaces" = lo ] || { echo "interfaces: $ifaces"; exit 1; }
  flags="$(nsenter --target "$2" --net --mount -- cat /sys/class/net/lo/flags)"
  (( flags & 1 )) || { echo "lo is down ($flags)"; exit 1; }' _ "$state" "$LEADER"
check "rabbitmq-server.service and chatqueue-mock-upstream.service active" \
  wait_until 60 ct systemctl is-active rabbitmq-server.service chatqueue-mock-upstream.service

# 1. Start: active only after READY=1 (Type=notify).
if ct systemctl start chatqueue-worker@1 chatqueue-worker@2 chatqueue-worker@3 2>"$LOGS/start.err"; then
  check "systemctl start chatqueue-worker@1 @2 @3: active (Type=notify, READY=1 received)" bash -c '
    for n in 1 2 3; do
      [ "$("${@}" show -P ActiveState chatqueue-worker@$n)" = active ] || { echo "@$n not active"; exit 1; }
      [ "$("${@}" show -P Type chatqueue-worker@$n)" = notify ] || { echo "@$n not Type=notify"; exit 1; }
    done' _ ct systemctl
else
  fail "systemctl start chatqueue-worker@1 @2 @3: active (Type=notify, READY=1 received)" "$(tr '\n' ' ' <"$LOGS/start.err")"
fi

# 2. STATUS= text from the worker in `systemctl status`.
status_text="$(ct systemctl status --no-pager chatqueue-worker@1 2>/dev/null | sed -n 's/^ *Status: //p' || true)"
if [ -n "$status_text" ]; then pass "systemctl status shows the worker's STATUS text: $status_text"
else fail "systemctl status shows the worker's STATUS text" "no Status: line"; fi

# 3. Dynamic user, credential.
check "each worker runs as a dynamic user (UID 61184-65519, not root)" bash -c '
  for n in 1 2 3; do
    pid="$("${@}" systemctl show -P MainPID chatqueue-worker@$n)"
    uid="$("${@}" awk "/^Uid:/ { print \$2 }" /proc/$pid/status)"
    [ -n "$uid" ] && [ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || { echo "@$n uid $uid"; exit 1; }
    echo "@$n pid $pid uid $uid"
  done' _ ct
check "each worker has \$CREDENTIALS_DIRECTORY/upstream.api_key (the key from LoadCredential)" bash -c '
  for n in 1 2 3; do
    pid="$("${@}" systemctl show -P MainPID chatqueue-worker@$n)"
    dir="$("${@}" cat /proc/$pid/environ | tr "\0" "\n" | sed -n "s/^CREDENTIALS_DIRECTORY=//p")"
    [ -n "$dir" ] || { echo "@$n: no CREDENTIALS_DIRECTORY"; exit 1; }
    "${@}" cmp -s "$dir/upstream.api_key" /etc/chatqueue/upstream.api_key || { echo "@$n: $dir/upstream.api_key differs"; exit 1; }
  done' _ ct

# 4. Status file and health.
check "status file /run/chatqueue-worker-N/status.json: this pid, instance N, running" bash -c '
  for n in 1 2 3; do
    pid="$("${@}" systemctl show -P MainPID chatqueue-worker@$n)"
    json="$("${@}" cat /run/chatqueue-worker-$n/status.json)" || exit 1
    grep -q "\"pid\":$pid," <<<"$json" || { echo "@$n: pid $pid not in $json"; exit 1; }
    grep -q "\"instance\":\"$n\"" <<<"$json" || { echo "@$n: instance"; exit 1; }
    grep -q "\"state\":\"running\"" <<<"$json" || { echo "@$n: not running"; exit 1; }
  done' _ ct
check "chatqueue health --status-file /run/chatqueue-worker-N/status.json: healthy" bash -c '
  for n in 1 2 3; do
    out="$("${@}" chatqueue health --status-file /run/chatqueue-worker-$n/status.json)" || { echo "@$n: $out"; exit 1; }
    [[ "$out" == healthy:* ]] || { echo "@$n: $out"; exit 1; }
  done' _ ct

# 5. Requests through all three: RabbitMQ spreads deliveries over the consumers.
before=()
for n in 1 2 3; do before[$n]="$(status_number "$n" succeeded)"; done
send_failures=0
for i in $(seq 1 12); do
  ct chatqueue send --no-stream --timeout 15 "boot test request $i" >>"$LOGS/send.log" 2>&1 || send_failures=$((send_failures + 1))
done
ct chatqueue send --stream --timeout 15 "boot test stream" >>"$LOGS/send.log" 2>&1 || send_failures=$((send_failures + 1))
sleep 6   # one status.interval: the files show the counts
answered=""
for n in 1 2 3; do answered+=" @$n:$(( $(status_number "$n" succeeded) - ${before[$n]:-0} ))"; done
if [ "$send_failures" -eq 0 ] && ! grep -q ":0\b" <<<"$answered" && ! grep -q ":-" <<<"$answered"; then
  pass "13 requests (12 non-stream, 1 stream) answered, by all three workers:$answered"
else
  fail "requests answered through all three workers" "send failures $send_failures, succeeded per worker:$answered"
fi

# 6. Journal.
check "journald has each worker's logs" bash -c '
  for n in 1 2 3; do
    lines="$("${@}" journalctl --no-pager -q -u chatqueue-worker@$n -o cat | wc -l)"
    [ "$lines" -gt 0 ] || { echo "@$n: no lines"; exit 1; }
  done' _ ct
if ct journalctl --no-pager -q -o cat | grep -qF "$secret"; then
  fail "the API key appears nowhere in the journal" "found"
else
  pass "the API key appears nowhere in the journal ($(ct journalctl --no-pager -q | wc -l) lines searched)"
fi

# 7. kill -9 -> Restart=on-failure.
pid2="$(main_pid 2)"
restarts2="$(prop chatqueue-worker@2 NRestarts)"
ct kill -9 "$pid2"
# restarted N OLD_PID OLD_RESTARTS: worker@N is active again with another pid and a higher NRestarts.
restarted() {
  [ "$(ct systemctl show -P ActiveState "chatqueue-worker@$1")" = active ] &&
    [ "$(ct systemctl show -P MainPID "chatqueue-worker@$1")" != "$2" ] &&
    [ "$(ct systemctl show -P NRestarts "chatqueue-worker@$1")" -gt "$3" ]
}
check "kill -9 of worker@2 (pid $pid2): restarted and active again" wait_until 20 restarted 2 "$pid2" "$restarts2"

# 8. SIGSTOP -> the watchdog kills it (SIGABRT) and it is restarted.
pid3="$(main_pid 3)"
restarts3="$(prop chatqueue-worker@3 NRestarts)"
ct kill -STOP "$pid3"
check "SIGSTOP of worker@3 (pid $pid3): watchdog timeout, killed, restarted, active" wait_until 40 restarted 3 "$pid3" "$restarts3"
if ct journalctl --no-pager -q -u chatqueue-worker@3 -o cat | grep -qi "watchdog timeout"; then
  pass "the journal says why: $(ct journalctl --no-pager -q -u chatqueue-worker@3 -o cat | grep -i -m1 'watchdog timeout')"
else
  fail "the journal records the watchdog timeout for worker@3" "no 'Watchdog timeout' line"
fi

# 9. Draining stop: a slow stream (30 chunks, 200 ms apart) in flight, then stop its worker.
printf '{"model":"deepseek-chat","stream":true,"messages":[{"role":"user","content":"slow"}],"mock":{"interval_ms":200,"words":30}}\n' \
  >"$TREE/root/slow.json"
ct chatqueue send --timeout 60 --json --file /root/slow.json >"$LOGS/slow.jsonl" 2>"$LOGS/slow.err" &
slow_pid=$!
holder=""
for _ in $(seq 1 40); do
  for n in 1 2 3; do
    if [ "$(status_number "$n" in_flight)" = 1 ]; then holder=$n; break 2; fi
  done
  sleep 0.25
done
if [ -z "$holder" ]; then
  fail "systemctl stop drains the in-flight stream and exits 0" "no worker showed the request in flight"
  wait "$slow_pid" || true
else
  stop_started=$SECONDS
  ct systemctl stop "chatqueue-worker@$holder" || true
  stop_seconds=$((SECONDS - stop_started))
  slow_status=0; wait "$slow_pid" || slow_status=$?
  result="$(prop "chatqueue-worker@$holder" Result)"
  code="$(prop "chatqueue-worker@$holder" ExecMainStatus)"
  if [ "$slow_status" -eq 0 ] && grep -q '"chat.completion"' "$LOGS/slow.jsonl" && [ "$result" = success ] && [ "$code" = 0 ]; then
    pass "systemctl stop of worker@$holder drained the stream (answered in full), Result=success, exit 0, stop took $stop_seconds s"
  else
    fail "systemctl stop drains the in-flight stream and exits 0" \
      "send exit $slow_status, Result=$result ExecMainStatus=$code $(tail -n 2 "$LOGS/slow.err" | tr '\n' ' ')"
  fi
  ct systemctl start "chatqueue-worker@$holder" || true
fi

# 10. The sandbox, seen from the running worker.
pid1="$(main_pid 1)"
check "sandbox in the worker's process: no capabilities, no_new_privs, seccomp filter" bash -c '
  s="$("${@}" cat /proc/$0/status)"
  grep -q "^CapEff:\s*0000000000000000" <<<"$s" || { echo "CapEff"; exit 1; }
  grep -q "^NoNewPrivs:\s*1" <<<"$s" || { echo "NoNewPrivs"; exit 1; }
  grep -q "^Seccomp:\s*2" <<<"$s" || { echo "Seccomp"; exit 1; }' "$pid1" ct
uid1="$(ct awk '/^Uid:/ { print $2 }' "/proc/$pid1/status")"
gid1="$(ct awk '/^Gid:/ { print $2 }' "/proc/$pid1/status")"
# In the worker's mount namespace as root: ProtectSystem=strict and
# ProtectHome= make every path read-only or hidden even for root, except the
# runtime directory (and the private /tmp). As the worker's user: the key file
# itself is not readable (only the credential copy is).
in_worker_root() { ct nsenter --target "$pid1" --mount -- "$@"; }
in_worker() { ct nsenter --target "$pid1" --mount --setuid "$uid1" --setgid "$gid1" -- "$@"; }
export -f in_worker_root in_worker
export pid1 uid1 gid1
check "sandbox (worker@1's mounts): /, /etc, /usr, /var, /run read-only even for root; /root, /home empty; the worker's user writes only /run/chatqueue-worker-1 (and its private /tmp)" bash -c '
  for path in /probe /etc/chatqueue/probe /usr/probe /var/lib/probe /var/log/probe /run/probe /run/lock/probe /root/probe /home/probe; do
    if in_worker_root sh -c "echo x > $path" 2>/dev/null; then
      echo "$path is writable as root: $(in_worker_root findmnt -no TARGET,OPTIONS -T "$path" | tr "\n" " ")"; exit 1
    fi
  done
  # The world-writable places a process can usually reach.
  for path in /run/lock/probe /dev/shm/probe /dev/mqueue/probe /var/lib/private/probe; do
    if in_worker sh -c "echo x > $path" 2>/dev/null; then
      echo "$path is writable by the worker: $(in_worker_root findmnt -no TARGET,OPTIONS -T "$path" | tr "\n" " ")"; exit 1
    fi
  done
  [ -z "$(in_worker_root ls -A /root)$(in_worker_root ls -A /home)" ] || { echo "/root or /home not empty"; exit 1; }
  in_worker sh -c "echo x > /run/chatqueue-worker-1/probe && rm /run/chatqueue-worker-1/probe" ||
    { echo "runtime directory not writable by the worker user"; exit 1; }
  if in_worker cat /etc/chatqueue/upstream.api_key >/dev/null 2>&1; then echo "the worker user reads the key file"; exit 1; fi
  exit 0'
check "sandbox (worker@1's mounts): private /tmp, minimal /dev (PrivateDevices)" bash -c '
  in_worker_root sh -c "echo x > /tmp/boot-test-probe && test ! -e /proc/1/root/tmp/boot-test-probe" || { echo "/tmp shared"; exit 1; }
  devices="$(in_worker_root ls /dev | tr "\n" " ")"
  for device in kmsg mem port vda console tty1; do
    case " $devices " in *" $device "*) echo "/dev/$device visible: $devices"; exit 1 ;; esac
  done
  exit 0'
exposure="$(ct systemd-analyze security --no-pager chatqueue-worker@1 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
if [ -n "$exposure" ] && awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }'; then
  pass "systemd-analyze security chatqueue-worker@1 (live): exposure $exposure <= $MAX_EXPOSURE"
else
  fail "systemd-analyze security chatqueue-worker@1 (live) <= $MAX_EXPOSURE" "exposure '${exposure:-none}'"
fi
check "no worker logged a sandbox denial (SIGSYS, EPERM on a blocked call) and all are active" bash -c '
  ! "${@}" journalctl --no-pager -q -o cat -u "chatqueue-worker@*" | grep -Ei "SIGSYS|bad system call|Operation not permitted" &&
  "${@}" systemctl is-active chatqueue-worker@1 chatqueue-worker@2 chatqueue-worker@3 >/dev/null' _ ct

ct journalctl --no-pager -o short-monotonic >"$LOGS/journal.txt" 2>&1 || true
printf 'boot test: %s checks passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
