#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine for the scale-out and failover
# tests (docs/operations.md "Scaling out"). Nodes cq1..cq3@localhost, AMQP on
# 5701..5703, Erlang distribution on 25701..25703, no management plugin, data
# and logs under $CHATQUEUE_CLUSTER_DIR (default .cluster/ in the repo,
# git-ignored). pause_minority partition handling; quorum queues get three
# replicas (quorum_cluster_size). The machine's own broker (5672) and the fault
# broker (5673/5674) are not touched.
#
#   cluster.sh start | stop | kill NODE | restart NODE | stop-node NODE |
#              start-node NODE | partition NODE | status [QUEUE] | leader QUEUE | env | reset
#   NODE is 1, 2 or 3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CHATQUEUE_CLUSTER_DIR:-$ROOT/.cluster}"
NODES=(1 2 3)
AMQP_BASE=5700
DIST_BASE=25700

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
node_name() { echo "cq$1@localhost"; }
node_dir() { echo "$DIR/cq$1"; }
ctl() { local n="$1"; shift; as_root rabbitmqctl -q -n "$(node_name "$n")" "$@"; }
check_node() { case "${1:-}" in 1|2|3) ;; *) echo "NODE must be 1, 2 or 3" >&2; exit 2 ;; esac; }
running() { ctl "$1" ping >/dev/null 2>&1; }

write_config() {
  local n="$1" d; d="$(node_dir "$n")"
  mkdir -p "$d"
  cat > "$d/rabbitmq.conf" <<CONF
listeners.tcp.default = $((AMQP_BASE + n))
loopback_users = none
cluster_partition_handling = pause_minority
# Faster detection of a dead peer than the default 60 s (ticks every 15 s).
net_ticktime = 15
CONF
  # Three replicas for every quorum queue declared without x-quorum-initial-group-size.
  echo "[{rabbit, [{quorum_cluster_size, 3}]}]." > "$d/advanced.config"
  echo "[]." > "$d/enabled_plugins"
}

# Starts node N's Erlang VM and the RabbitMQ application; returns once it answers ping.
launch() {
  local n="$1" d; d="$(node_dir "$n")"
  if running "$n"; then
    # Ours only if its pid is the one our pid file holds: a node of that name
    # started from another checkout (whose data may be gone) is not reused.
    local pid; pid="$(ctl "$n" eval 'list_to_integer(os:getpid()).' 2>/dev/null || true)"
    [ -n "$pid" ] && [ "$pid" = "$(cat "$d/pid" 2>/dev/null || true)" ] && return 0
    echo "a node named $(node_name "$n") is running from elsewhere (pid ${pid:-?}); stop it first" >&2
    return 1
  fi
  write_config "$n"
  chown -R rabbitmq:rabbitmq "$DIR" 2>/dev/null || true
  # One scheduler, no busy-waiting: the machine is small and shared. Started
  # holding no descriptor but 0-2: a daemon that kept a caller's pipe open (a
  # test runner reading our output) would keep the caller waiting for EOF.
  ( for fd in $(ls "/proc/$BASHPID/fd"); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
  as_root env RABBITMQ_NODENAME="$(node_name "$n")" RABBITMQ_NODE_PORT="$((AMQP_BASE + n))" \
    RABBITMQ_DIST_PORT="$((DIST_BASE + n))" RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" RABBITMQ_PID_FILE="$d/pid" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none" \
    rabbitmq-server -detached </dev/null >/dev/null 2>&1 || true )
  # The node registers with epmd a moment after -detached returns.
  for _ in $(seq 1 100); do running "$n" && return 0; sleep 0.2; done
  echo "node $n did not come up (see $d/log)" >&2; return 1
}

await() { ctl "$1" await_startup --timeout 180 >/dev/null; }

members() { ctl 1 eval 'lists:sort(rabbit_nodes:all()).' 2>/dev/null | tr -d '\n '; }

start() {
  # Started together: a node that was clustered waits for its peers' tables.
  local pids=() pid
  for n in "${NODES[@]}"; do launch "$n" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || exit 1; done
  for n in "${NODES[@]}"; do await "$n"; done
  # Nodes 2 and 3 join node 1's cluster once (the membership survives restarts).
  for n in 2 3; do
    if ! members | grep -q "cq$n@localhost"; then
      ctl "$n" stop_app
      ctl "$n" join_cluster "$(node_name 1)"
      ctl "$n" start_app
      await "$n"
    fi
  done
}

stop_node() { ctl "$1" stop >/dev/null 2>&1 || true; }

kill_node() {
  local pid; pid="$(cat "$(node_dir "$1")/pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  # The CLI sees the node gone once epmd dropped its registration.
  for _ in $(seq 1 50); do running "$1" || return 0; sleep 0.1; done
}

# Cuts node N off from its peers at the Erlang distribution level, both ways:
# it accepts and makes no connection to other nodes (net_kernel:allow with a
# node that does not exist) and drops the ones it has. Its peers see it down at
# once (a network partition is noticed after net_ticktime instead); under
# pause_minority it pauses. The CLI cannot reach it either: `restart N` heals.
partition() {
  ctl "$1" eval "net_kernel:allow(['nobody@nowhere']), [erlang:disconnect_node(Peer) || Peer <- ['cq1@localhost', 'cq2@localhost', 'cq3@localhost'], Peer =/= node()], ok." >/dev/null
}

# The node that leads QUEUE's Raft group (from any running node), e.g. cq2@localhost.
leader() {
  local queue="$1" n
  for n in "${NODES[@]}"; do
    if running "$n"; then
      ctl "$n" eval "case rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"$queue\">>)) of {ok, Q} -> {_, L} = amqqueue:get_pid(Q), io:format(\"~s~n\", [L]); _ -> io:format(\"none~n\") end." 2>/dev/null | head -1
      return 0
    fi
  done
  echo none
}

status() {
  local n
  for n in "${NODES[@]}"; do
    if running "$n"; then
      local state; state="$(ctl "$n" eval 'case rabbit:is_running() of true -> running; false -> paused end.' 2>/dev/null | head -1)"
      echo "node $n $(node_name "$n") amqp://127.0.0.1:$((AMQP_BASE + n)) $state"
    else
      echo "node $n $(node_name "$n") amqp://127.0.0.1:$((AMQP_BASE + n)) down"
    fi
  done
  if [ -n "${1:-}" ]; then
    echo "queue $1 leader $(leader "$1")"
    for n in "${NODES[@]}"; do
      if running "$n"; then as_root rabbitmq-queues -q -n "$(node_name "$n")" quorum_status "$1" 2>/dev/null || true; break; fi
    done
  fi
}

case "${1:-}" in
  start) start ;;
  stop) for n in "${NODES[@]}"; do stop_node "$n" & done; wait ;;
  kill) check_node "${2:-}"; kill_node "$2" ;;
  stop-node) check_node "${2:-}"; stop_node "$2" ;;
  start-node) check_node "${2:-}"; launch "$2"; await "$2" ;;
  partition) check_node "${2:-}"; partition "$2" ;;
  restart) check_node "${2:-}"; stop_node "$2"; kill_node "$2"; launch "$2"; await "$2" ;;
  status) status "${2:-}" ;;
  leader) leader "${2:?QUEUE}" ;;
  env)
    echo "CHATQUEUE_TEST_CLUSTER_URLS=amqp://guest:guest@127.0.0.1:5701/,amqp://guest:guest@127.0.0.1:5702/,amqp://guest:guest@127.0.0.1:5703/"
    ;;
  reset) for n in "${NODES[@]}"; do stop_node "$n"; kill_node "$n"; done; as_root rm -rf "$DIR" ;;
  *) echo "usage: $0 start|stop|kill NODE|restart NODE|stop-node NODE|start-node NODE|partition NODE|status [QUEUE]|leader QUEUE|env|reset" >&2; exit 2 ;;
esac
