#!/usr/bin/env bash
# A second RabbitMQ node just for the fault-injection tests, so they can stop,
# restart and cut it without disturbing the tests that use the main broker.
# AMQP on 5673, AMQPS on 5674 (a CA and certificates made here, for the TLS
# tests), its own data under $CHATQUEUE_FAULT_DIR (default /tmp/chatqueue-fault).
#
#   fault-broker.sh start | stop | stop-app | start-app | env
set -euo pipefail

NODE="${CHATQUEUE_FAULT_NODE:-chatqueue-fault@localhost}"
DIR="${CHATQUEUE_FAULT_DIR:-/tmp/chatqueue-fault}"
AMQP_PORT=5673
AMQPS_PORT=5674
DIST_PORT=25673

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
ctl() { as_root rabbitmqctl -q -n "$NODE" "$@"; }

make_certificates() {
  local tls="$DIR/tls"
  [ -f "$tls/server.pem" ] && return 0
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=chatqueue test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  for name in server client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$tls/$name.key" -out "$tls/$name.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > "$tls/$name.ext"
    openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
      -days 3650 -extfile "$tls/$name.ext" -out "$tls/$name.pem" 2>/dev/null
  done
  # A CA the server does not chain to, for the verification-failure test.
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=unrelated CA" \
    -keyout "$tls/other-ca.key" -out "$tls/other-ca.pem" 2>/dev/null
  chmod 644 "$tls"/*
}

start() {
  if ctl ping >/dev/null 2>&1; then return 0; fi
  mkdir -p "$DIR"
  make_certificates
  cat > "$DIR/rabbitmq.conf" <<CONF
listeners.tcp.default = $AMQP_PORT
listeners.ssl.default = $AMQPS_PORT
ssl_options.cacertfile = $DIR/tls/ca.pem
ssl_options.certfile = $DIR/tls/server.pem
ssl_options.keyfile = $DIR/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
loopback_users = none
CONF
  echo "[]." > "$DIR/enabled_plugins"
  chown -R rabbitmq:rabbitmq "$DIR" 2>/dev/null || true
  as_root env RABBITMQ_NODENAME="$NODE" RABBITMQ_DIST_PORT="$DIST_PORT" RABBITMQ_MNESIA_BASE="$DIR/mnesia" \
    RABBITMQ_LOG_BASE="$DIR/log" RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" RABBITMQ_PID_FILE="$DIR/pid" \
    rabbitmq-server -detached >/dev/null 2>&1 || true
  # The node registers with epmd a moment after -detached returns.
  for _ in $(seq 1 60); do ctl ping >/dev/null 2>&1 && break; sleep 1; done
  ctl await_startup --timeout 120
}

case "${1:-start}" in
  start) start ;;
  stop) ctl stop >/dev/null 2>&1 || true ;;
  stop-app) ctl stop_app ;;
  start-app) ctl start_app && ctl await_startup --timeout 120 ;;
  env)
    echo "CHATQUEUE_TEST_FAULT_NODE=$NODE"
    echo "CHATQUEUE_TEST_FAULT_PORT=$AMQP_PORT"
    echo "CHATQUEUE_TEST_FAULT_TLS_PORT=$AMQPS_PORT"
    echo "CHATQUEUE_TEST_FAULT_TLS_DIR=$DIR/tls"
    ;;
  *) echo "usage: $0 start|stop|stop-app|start-app|env" >&2; exit 2 ;;
esac
