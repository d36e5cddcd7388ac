#!/usr/bin/python3
"""One failover run against the three-node cluster (scripts/cluster.sh), driven
by scripts/failover-bench.sh: starts three workers whose broker.url lists the
nodes in different orders, publishes REQUESTS streamed requests (the mock
upstream paces the chunks), injects the scenario's fault while they are in
flight, collects every reply from a quorum reply queue (it survives any one
node) and checks them. Prints one JSON line with the figures.

  failover_run.py SCENARIO RUN_DIR   (environment: CHATQUEUE_BIN, UPSTREAM_URL,
                                      REQUESTS, CONCURRENCY, WORDS, INTERVAL_MS)
Scenarios: leader-stop, worker-node-stop, reply-leader-stop, kill9, rolling, partition.
"""
import json
import os
import subprocess
import sys
import time

import pika

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
URLS = [f"amqp://guest:guest@127.0.0.1:{5700 + n}/%2f" for n in (1, 2, 3)]
ORDERS = [(1, 2, 3), (2, 3, 1), (3, 1, 2)]  # worker k connects to node k first

scenario, run_dir = sys.argv[1], sys.argv[2]
BIN = os.environ["CHATQUEUE_BIN"]
UPSTREAM = os.environ["UPSTREAM_URL"]
REQUESTS = int(os.environ.get("REQUESTS", "1000"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "400"))
WORDS = int(os.environ.get("WORDS", "12"))
INTERVAL_MS = int(os.environ.get("INTERVAL_MS", "500"))
STAMP = os.path.basename(run_dir.rstrip("/"))
QUEUE = f"failover.{STAMP}"
REPLIES = f"failover.replies.{STAMP}"
os.makedirs(run_dir, exist_ok=True)


def cluster(*args):
    return subprocess.run([CLUSTER, *args], check=True, capture_output=True, text=True).stdout.strip()


def connect():
    """A channel on the first node that answers (the reply consumer follows the cluster)."""
    last = None
    for _ in range(200):
        for url in URLS:
            try:
                params = pika.URLParameters(url)
                params.heartbeat = 10
                params.blocked_connection_timeout = 30
                params.socket_timeout = 2
                connection = pika.BlockingConnection(params)
                return connection, connection.channel()
            except Exception as error:  # noqa: BLE001 - any node may be down
                last = error
        time.sleep(0.1)
    raise RuntimeError(f"no node answers: {last}")


def status(k):
    try:
        with open(os.path.join(run_dir, f"w{k}.status.json")) as f:
            document = json.load(f)
        broker = document.get("broker", {})
        return document.get("state"), broker.get("consumer_tag"), broker.get("reconnects", 0)
    except (OSError, ValueError):
        return None, None, 0


def consuming(k):
    state, tag, _ = status(k)
    return state == "running" and tag is not None


# Workers: one per node order, status file every 0.2 s (and on every state change).
workers = []
for k, order in enumerate(ORDERS, start=1):
    url = ",".join(URLS[n - 1] for n in order)
    log = open(os.path.join(run_dir, f"w{k}.log"), "w")
    workers.append(subprocess.Popen(
        [BIN, "worker", "--instance", f"w{k}", "--broker-url", url, "--queue", QUEUE, "--upstream-url", UPSTREAM,
         "--set", f"worker.concurrency={CONCURRENCY}", "--set", "log.level=warning",
         "--set", "replies.allowed_queues=failover.replies.*",
         "--set", f"status.file={run_dir}/w{k}.status.json", "--set", "status.interval=0.2"],
        stdout=log, stderr=log))
deadline = time.time() + 60
while not all(consuming(k) for k in (1, 2, 3)):
    if time.time() > deadline:
        sys.exit("workers did not start consuming (see " + run_dir + ")")
    time.sleep(0.05)

connection, channel = connect()
channel.queue_declare(REPLIES, durable=True, arguments={"x-queue-type": "quorum"})
channel.basic_qos(prefetch_count=5000)

expected = {}
published_at = time.time()
for i in range(REQUESTS):
    rid = f"r{i}"
    text = f"{rid} " + " ".join(f"x{j}" for j in range(WORDS))
    expected[rid] = "Echo: " + text
    body = {"model": "deepseek-chat", "stream": True, "messages": [{"role": "user", "content": text}],
            "mock": {"interval_ms": INTERVAL_MS}}
    channel.basic_publish("", QUEUE, json.dumps(body),
                          pika.BasicProperties(message_id=rid, reply_to=REPLIES, delivery_mode=2,
                                               content_type="application/json"))

# Reply bookkeeping: per request, the (attempt, seq) seen in arrival order.
seen = {}  # rid -> {(attempt, seq): (type, body)}
order_violations = 0
last_seq = {}  # (rid, attempt) -> highest seq seen
finals = {}  # rid -> [attempt, ...]
pending_ack = [0]


def on_reply(ch, method, props, body):
    global order_violations
    headers = props.headers or {}
    rid = headers.get("x-request-id")
    if isinstance(rid, bytes):
        rid = rid.decode()
    attempt, seq = int(headers.get("x-attempt", 0)), int(headers.get("x-seq", -1))
    entries = seen.setdefault(rid, {})
    if (attempt, seq) not in entries:  # a reply redelivered to this consumer after a reconnect is not new
        if seq <= last_seq.get((rid, attempt), -1):
            order_violations += 1
        last_seq[(rid, attempt)] = max(seq, last_seq.get((rid, attempt), -1))
        entries[(attempt, seq)] = (props.type, body)
        if props.type in ("chat.completion", "error"):
            finals.setdefault(rid, []).append(attempt)
    pending_ack[0] = method.delivery_tag


def consume():
    global connection, channel
    while True:
        try:
            channel.basic_consume(REPLIES, on_reply)
            return
        except Exception:  # noqa: BLE001
            connection, channel = connect()
            channel.basic_qos(prefetch_count=5000)


consume()
polls = {k: [] for k in (1, 2, 3)}  # (t, consuming, reconnects) per worker
fault_times = []
faults = []


def pump(seconds):
    """Process replies and poll the status files every 50 ms for `seconds`."""
    global connection, channel
    end = time.time() + seconds
    while time.time() < end:
        try:
            connection.process_data_events(time_limit=0.05)
            if pending_ack[0]:
                channel.basic_ack(pending_ack[0], multiple=True)
                pending_ack[0] = 0
        except Exception:  # noqa: BLE001 - the reply consumer's node went away
            pending_ack[0] = 0
            connection, channel = connect()
            channel.basic_qos(prefetch_count=5000)
            consume()
        now = time.time()
        for k in (1, 2, 3):
            _, _, reconnects = status(k)
            polls[k].append((now, consuming(k), reconnects))


def node_of(leader):
    return int(leader.split("@")[0][2:])


def fault(kind, node):
    fault_times.append(time.time())
    faults.append(f"{kind} node {node}")
    # The fault command runs in the background so the polling goes on meanwhile.
    return subprocess.Popen([CLUSTER, kind, str(node)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(process):
    while process.poll() is None:
        pump(0.05)


pump(max(0.0, published_at + 1.5 - time.time()))  # every request is streaming by now
leader = node_of(cluster("leader", QUEUE))
faulted = []
if scenario == "leader-stop":
    wait_for(fault("stop-node", leader)); faulted.append(leader)
elif scenario == "worker-node-stop":
    node = next(n for n in (1, 2, 3) if n != leader)  # worker n's node, not the queue's leader
    wait_for(fault("stop-node", node)); faulted.append(node)
elif scenario == "reply-leader-stop":
    # The node leading the quorum reply queue (and hosting a worker's connections),
    # whatever leads the request queue: the worker reconnects while the reply
    # queue elects a leader, the case that once had every final refused.
    node = node_of(cluster("leader", REPLIES))
    wait_for(fault("stop-node", node)); faulted.append(node)
elif scenario == "kill9":
    wait_for(fault("kill", leader)); faulted.append(leader)
elif scenario == "rolling":
    for node in (1, 2, 3):
        wait_for(fault("restart", node))
        # A rolling upgrade waits until the quorum queues are safe to lose one more node.
        waiter = subprocess.Popen(["rabbitmq-upgrade", "-q", "-n", f"cq{node}@localhost", "await_online_quorum_plus_one",
                                   "-t", "120"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(waiter)
elif scenario == "partition":
    # Worker 3's node is cut off from the other two: the minority side.
    wait_for(fault("partition", 3)); faulted.append(3)
else:
    sys.exit(f"unknown scenario {scenario}")

# Until every request has a final (or nothing arrives for 60 s).
idle_since, count = time.time(), 0
while len(finals) < REQUESTS and time.time() - idle_since < 60:
    pump(0.5)
    total = sum(len(v) for v in seen.values())
    if total != count:
        idle_since, count = time.time(), total
pump(1.0)  # late duplicates
done_at = time.time()

# Recovery per fault: from the fault until every worker is running with a consumer
# again (a worker never seen out of service counts 0).
recoveries = []
for index, t0 in enumerate(fault_times):
    t_end = fault_times[index + 1] if index + 1 < len(fault_times) else done_at
    worst = 0.0
    for k in (1, 2, 3):
        window = [p for p in polls[k] if t0 <= p[0] <= t_end]
        base = next((p[2] for p in polls[k] if p[0] < t0), 0)
        out = [p for p in window if not p[1] or p[2] != base]
        if out:
            back = next((p[0] for p in window if p[0] > out[0][0] and p[1]), None)
            worst = max(worst, (back - t0) if back else t_end - t0)
    recoveries.append(round(worst * 1000))

missing = [rid for rid in expected if rid not in finals]
wrong = duplicates = redelivered = incomplete = errors = 0
for rid, text in expected.items():
    entries = seen.get(rid, {})
    attempts = finals.get(rid, [])
    if len(attempts) > 1:
        duplicates += 1
    if any(a > 1 for a, _ in entries):
        redelivered += 1
    for attempt in attempts:
        final_seq = next(s for (a, s), (t, _) in entries.items() if a == attempt and t in ("chat.completion", "error"))
        kind, body = entries[(attempt, final_seq)]
        if kind == "error":
            errors += 1
            continue
        content = json.loads(body)["choices"][0]["message"]["content"]
        chunks = [entries.get((attempt, s)) for s in range(final_seq)]
        if any(c is None for c in chunks):
            incomplete += 1
            continue
        streamed = "".join((json.loads(b)["choices"][0]["delta"].get("content") or "") for _, b in chunks)
        if content != text or streamed != text:
            wrong += 1

# Publisher connections the workers replaced after a refused final (docs/protocol.md "Delivery guarantees").
replacements = 0
for k in (1, 2, 3):
    try:
        with open(os.path.join(run_dir, f"w{k}.status.json")) as f:
            replacements += json.load(f).get("broker", {}).get("publisher_replacements", 0)
    except (OSError, ValueError):
        pass
dead_lettered = 0
try:
    dead_lettered = channel.queue_declare(QUEUE + ".dead", passive=True).method.message_count
except Exception:  # noqa: BLE001 - the reply consumer's node went away: counted as unknown (0)
    pass

for process in workers:
    process.terminate()
for process in workers:
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
for node in (1, 2, 3):
    # A partitioned node is paused and unreachable for the CLI: restart heals it.
    subprocess.run([CLUSTER, "restart" if scenario == "partition" and node in faulted else "start-node", str(node)],
                   capture_output=True)
try:
    connection.close()
except Exception:  # noqa: BLE001
    pass
connection, channel = connect()
for queue in (QUEUE, QUEUE + ".dead", REPLIES):
    channel.queue_delete(queue)
channel.exchange_delete(QUEUE + ".dlx")
connection.close()

print(json.dumps({
    "scenario": scenario, "run": STAMP, "requests": REQUESTS, "faults": faults, "leader_before": leader,
    "recovery_ms": recoveries, "missing_final": len(missing), "wrong_content": wrong, "order_violations": order_violations,
    "chunk_gaps": incomplete, "error_finals": errors, "duplicate_finals": duplicates, "redelivered": redelivered,
    "completed_s": round(done_at - published_at, 1), "publisher_replacements": replacements,
    "dead_lettered": dead_lettered,
}))
