#!/usr/bin/env python3
"""The mock upstream's statistics for scripts/ratelimit-bench.sh (standard library only).

  ratelimit_stats.py sample URL STOP_FILE OUT.jsonl   # GET URL/_mock/statistics once a second until STOP_FILE exists
  ratelimit_stats.py fetch URL                        # print URL/_mock/statistics once
  ratelimit_stats.py report RESULTS_DIR NOTE MODE...  # the Markdown report of the runs in RESULTS_DIR

A run MODE (the CHATQUEUE_UPSTREAM_ADAPTIVE_CONCURRENCY value) left in RESULTS_DIR:
MODE.statistics.json (the mock's statistics after the run), MODE.samples.jsonl
(the samples, without the per-second series) and MODE.bench.json (`chatqueue bench --json-out`).
"""

import json
import os
import sys
import time
import urllib.request


def statistics(url):
    with urllib.request.urlopen(url + "/_mock/statistics", timeout=5) as response:
        return json.load(response)


def sample(url, stop_file, out):
    start = time.monotonic()
    with open(out, "w") as samples:
        while not os.path.exists(stop_file):
            try:
                snapshot = statistics(url)
                snapshot.pop("seconds", None)  # the final fetch has the whole series
                snapshot["t"] = round(time.monotonic() - start, 3)
                samples.write(json.dumps(snapshot) + "\n")
                samples.flush()
            except (OSError, ValueError) as error:
                print("sampler:", error, file=sys.stderr)
            time.sleep(1.0 - (time.monotonic() - start) % 1.0)


def load_json(path, default):
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError):
        return default


def report(results, note, modes):
    lines = ["# Rate-limited upstream (AIMD window)", "", note, ""]
    lines += [
        "| adaptive_concurrency | completed | error replies | time s | req/s | upstream 200 | upstream 429 "
        "| 429 share | tries per request | peak in progress |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tables = []
    for mode in modes:
        bench = load_json(f"{results}/{mode}.bench.json", {})
        final = load_json(f"{results}/{mode}.statistics.json", {})
        samples = []
        if os.path.exists(f"{results}/{mode}.samples.jsonl"):
            with open(f"{results}/{mode}.samples.jsonl") as file:
                samples = [json.loads(line) for line in file if line.strip()]
        statuses = final.get("answers_by_status", {})
        ok, limited = statuses.get("200", 0), statuses.get("429", 0)
        answers = sum(statuses.values())
        completed = bench.get("completed", 0)
        share = f"{100.0 * limited / answers:.1f} %" if answers else "-"
        tries = f"{answers / completed:.2f}" if completed else "-"
        lines.append(
            f"| {mode} | {completed} | {bench.get('error_replies', '?')} | {bench.get('wall_seconds', '?')} "
            f"| {bench.get('requests_per_second', '?')} | {ok} | {limited} | {share} | {tries} "
            f"| {final.get('peak_in_progress', '?')} |"
        )

        seconds = final.get("seconds", [])
        first = seconds[0]["second"] if seconds else 0
        # In progress as sampled: the first sample of each second of the sampler's clock
        # (it starts with the workers, a moment before the mock's first answer).
        sampled = {}
        for snapshot in samples:
            sampled.setdefault(int(snapshot["t"]), snapshot.get("in_progress", 0))
        table = [
            f"## adaptive_concurrency={mode}",
            "",
            "| second | 200 | 429 | other | peak in progress |",
            "|---:|---:|---:|---:|---:|",
        ]
        for second in seconds:
            table.append(
                f"| {second['second'] - first} | {second['ok']} | {second['rate_limited']} | {second['other']} "
                f"| {second['peak_in_progress']} |"
            )
        in_progress = [sampled[t] for t in sorted(sampled)]
        if in_progress:
            table += ["", "In progress, sampled once a second: " + " ".join(str(v) for v in in_progress)]
        tables += table + [""]
    lines += [
        "",
        "429 share: 429s among all upstream answers. Tries per request: upstream answers per completed request. "
        "Peak in progress: the most requests the mock held at once (it never exceeds the limit: above it, it "
        "answers 429). Seconds count from the mock's first answer.",
        "",
    ]
    print("\n".join(lines + tables))


def main(arguments):
    if len(arguments) == 4 and arguments[0] == "sample":
        sample(*arguments[1:])
    elif len(arguments) == 2 and arguments[0] == "fetch":
        print(json.dumps(statistics(arguments[1])))
    elif len(arguments) >= 3 and arguments[0] == "report":
        report(arguments[1], arguments[2], arguments[3:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
