#!/usr/bin/env bash
# Scales chatqueue-worker@1..MAX on this machine on the request queue's depth
# (docs/operations.md "Autoscaling"). Run by chatqueue-autoscale.timer; one
# decision per run, at most one instance started or stopped per run.
#
# Depth: messages ready (waiting for a worker) from `rabbitmqctl list_queues`
# when the broker runs here, else from the management API (CHATQUEUE_MGMT_URL,
# e.g. http://monitor:PASSWORD@rabbitmq:15672, a user with the monitoring tag).
#
# Environment (from /etc/default/chatqueue-autoscale): QUEUE (chat.requests),
# MIN (1), MAX (8), UP_PER_INSTANCE (16: ready messages per running instance
# above which one more starts), DOWN_AT (0: ready messages at or below which
# one instance stops, the highest-numbered first, when its queue has been this
# low for DOWN_AFTER runs, 5), STATE (/run/chatqueue-autoscale).
set -euo pipefail

QUEUE="${QUEUE:-chat.requests}"
MIN="${MIN:-1}"
MAX="${MAX:-8}"
UP_PER_INSTANCE="${UP_PER_INSTANCE:-16}"
DOWN_AT="${DOWN_AT:-0}"
DOWN_AFTER="${DOWN_AFTER:-5}"
STATE="${STATE:-/run/chatqueue-autoscale}"
mkdir -p "$STATE"

ready_messages() {
  if [ -n "${CHATQUEUE_MGMT_URL:-}" ]; then
    # vhost "/" is %2F in the API path.
    curl -fsS --max-time 10 "$CHATQUEUE_MGMT_URL/api/queues/%2F/$QUEUE?columns=messages_ready" |
      sed -n 's/.*"messages_ready":\([0-9]*\).*/\1/p'
  else
    rabbitmqctl -q --timeout 10 list_queues name messages_ready | awk -v q="$QUEUE" '$1 == q { print $2 }'
  fi
}

running_instances() {
  systemctl list-units --type=service --state=active --no-legend --plain 'chatqueue-worker@*.service' |
    sed -n 's/^chatqueue-worker@\([0-9]*\)\.service.*/\1/p' | sort -n
}

ready="$(ready_messages)"
case "$ready" in ''|*[!0-9]*) echo "cannot read the depth of $QUEUE; no change" >&2; exit 0 ;; esac
mapfile -t instances < <(running_instances)
count="${#instances[@]}"
low_runs="$(cat "$STATE/low_runs" 2>/dev/null || echo 0)"

if [ "$count" -lt "$MIN" ] || { [ "$ready" -gt $((UP_PER_INSTANCE * (count > 0 ? count : 1))) ] && [ "$count" -lt "$MAX" ]; }; then
  # The lowest free instance number.
  next=1
  while printf '%s\n' "${instances[@]}" | grep -qx "$next"; do next=$((next + 1)); done
  echo "ready=$ready instances=$count: starting chatqueue-worker@$next"
  systemctl start "chatqueue-worker@$next.service"
  echo 0 > "$STATE/low_runs"
elif [ "$ready" -le "$DOWN_AT" ] && [ "$count" -gt "$MIN" ]; then
  low_runs=$((low_runs + 1))
  if [ "$low_runs" -ge "$DOWN_AFTER" ]; then
    last="${instances[$((count - 1))]}"
    # SIGTERM: the instance drains (worker.shutdown_grace) and requeues what is left.
    echo "ready=$ready for $low_runs runs, instances=$count: stopping chatqueue-worker@$last"
    systemctl stop --no-block "chatqueue-worker@$last.service"
    low_runs=0
  fi
  echo "$low_runs" > "$STATE/low_runs"
else
  echo 0 > "$STATE/low_runs"
fi
