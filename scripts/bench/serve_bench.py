"""Driver of scripts/bench-serve.sh: Seed's server against llama.cpp's llama-server, side by side.

For each round, each thread count and each server (the order of the servers alternates between rounds), it
starts the server on 127.0.0.1 with the same model, threads and number of parallel sequences, waits for
/health, sends one warm-up request, runs serve_load.py's load at every concurrency, and stops the server by
its PID. Every measurement goes to a JSON-lines file; the Markdown table gives medians over the rounds.
"""

import argparse
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_load  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


class Server:
    """One server process; `name` is "seed" or "llamacpp"."""

    def __init__(self, name, command, log_path, url=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.url = url

    def log_tail(self, lines=20):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def wait_ready(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.url is None:  # Seed prints the URL it listens on
                with open(self.log_path, errors="replace") as f:
                    match = re.search(r"https?://127\.0\.0\.1:\d+", f.read())
                if match:
                    self.url = match.group(0)
            if self.url is not None:
                try:
                    if http_get(self.url + "/health")[0] == 200:
                        return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}")

    def model_id(self):
        try:
            status, body = http_get(self.url + "/v1/models")
            if status == 200:
                return json.loads(body)["data"][0]["id"]
        except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError):
            pass
        return "default"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_server(name, args, threads, log_dir, tag):
    log_path = os.path.join(log_dir, f"{name}-{tag}.log")
    if name == "seed":
        command = [args.seed, "serve", "--model", args.model, "--host", "127.0.0.1", "--port", "0",
                   "--threads", str(threads), "--parallel", str(args.parallel),
                   "--kv-cache-tokens", str(args.parallel * args.ctx_per_slot)]
        return Server(name, command, log_path)
    port = free_port()
    command = [args.llama_server, "--model", args.model, "--host", "127.0.0.1", "--port", str(port),
               "--threads", str(threads), "--threads-batch", str(threads),
               "--parallel", str(args.parallel), "--ctx-size", str(args.parallel * args.ctx_per_slot),
               "--cont-batching", "--no-webui"]
    return Server(name, command, log_path, url=f"http://127.0.0.1:{port}")


def requests_per_client(concurrency, total):
    return max(2, math.ceil(total / concurrency))


def load_args(args, url, model_id, concurrency, requests, max_tokens):
    return argparse.Namespace(url=url, endpoint=args.endpoint, model=model_id, max_tokens=max_tokens,
                              concurrency=concurrency, requests_per_client=requests, ignore_eos=True,
                              timeout=600)


def run(args):
    servers = [s for s in ("seed", "llamacpp") if (args.seed if s == "seed" else args.llama_server)]
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="seed-bench-serve-")
    os.makedirs(log_dir, exist_ok=True)
    results_path = os.path.join(log_dir, "results.jsonl")
    print(f"server logs and raw results in {log_dir}", file=sys.stderr)
    loadavg_before = open("/proc/loadavg").read().strip()
    print(f"loadavg before: {loadavg_before}", file=sys.stderr)
    with open(results_path, "a") as results:
        for round_index in range(args.rounds):
            order = servers if round_index % 2 == 0 else list(reversed(servers))
            for threads in args.threads:
                for name in order:
                    tag = f"r{round_index + 1}-t{threads}"
                    server = start_server(name, args, threads, log_dir, tag)
                    try:
                        server.wait_ready()
                        model_id = server.model_id()
                        warm = serve_load.run_load(load_args(args, server.url, model_id, 1, 1, 16))
                        if warm["failures"]:
                            raise RuntimeError(f"{name}: warm-up request failed: {warm['errors']}")
                        for concurrency in args.concurrency:
                            report = serve_load.run_load(load_args(
                                args, server.url, model_id, concurrency,
                                requests_per_client(concurrency, args.requests), args.max_tokens))
                            report.update(server=name, threads=threads, round=round_index + 1)
                            results.write(json.dumps(report) + "\n")
                            results.flush()
                            print(f"round {round_index + 1} threads {threads} {name} C={concurrency}: "
                                  f"{report['tok_s']} tok/s, TTFT p50 {report['ttft_p50_ms']} ms "
                                  f"p99 {report['ttft_p99_ms']} ms, ITL p50 {report['itl_p50_ms']} ms, "
                                  f"{report['requests']} requests, {report['failures']} failed, "
                                  f"{report['mean_completion_tokens']} tokens/request "
                                  f"({report['tokens_source']}), client CPU {report['client_cpu_s']} s of "
                                  f"{report['wall_s']} s", file=sys.stderr)
                            for error in report["errors"]:
                                print(f"  error: {error}", file=sys.stderr)
                    finally:
                        server.stop()
    loadavg_after = open("/proc/loadavg").read().strip()
    print(f"loadavg after: {loadavg_after}", file=sys.stderr)
    rows = [json.loads(line) for line in open(results_path)]
    print_table(rows, args, loadavg_before, loadavg_after)


def print_table(rows, args, loadavg_before, loadavg_after):
    def cell(server, threads, concurrency, key):
        values = [r[key] for r in rows if r["server"] == server and r["threads"] == threads
                  and r["concurrency"] == concurrency and r[key] is not None]
        return statistics.median(values) if values else None

    def number(value, digits=1):
        return "pending" if value is None else f"{value:.{digits}f}"

    def pair(server, threads, concurrency, first, second):
        a, b = cell(server, threads, concurrency, first), cell(server, threads, concurrency, second)
        return "pending" if a is None else f"{a:.0f} / {b:.0f}"

    print(f"loadavg before `{loadavg_before}`, after `{loadavg_after}`\n")
    print("| threads | concurrency | Seed tok/s | llama.cpp tok/s | ratio | Seed TTFT p50/p99 ms "
          "| llama.cpp TTFT p50/p99 ms | Seed ITL p50 ms | llama.cpp ITL p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for threads in args.threads:
        for concurrency in args.concurrency:
            s = cell("seed", threads, concurrency, "tok_s")
            l = cell("llamacpp", threads, concurrency, "tok_s")
            ratio = f"{s / l:.2f}" if s is not None and l else "pending"
            print(f"| {threads} | {concurrency} | {number(s)} | {number(l)} | {ratio} "
                  f"| {pair('seed', threads, concurrency, 'ttft_p50_ms', 'ttft_p99_ms')} "
                  f"| {pair('llamacpp', threads, concurrency, 'ttft_p50_ms', 'ttft_p99_ms')} "
                  f"| {number(cell('seed', threads, concurrency, 'itl_p50_ms'))} "
                  f"| {number(cell('llamacpp', threads, concurrency, 'itl_p50_ms'))} |")
    print()
    for server, label in (("seed", "Seed"), ("llamacpp", "llama.cpp")):
        mine = [r for r in rows if r["server"] == server]
        if not mine:
            continue
        failures = sum(r["failures"] for r in mine)
        requests = sum(r["requests"] for r in mine)
        sources = sorted({r["tokens_source"] for r in mine})
        tokens = [r["mean_completion_tokens"] for r in mine if r["mean_completion_tokens"] is not None]
        prompts = [r["mean_prompt_tokens"] for r in mine if r["mean_prompt_tokens"] is not None]
        print(f"{label}: {requests} requests, {failures} failed; completion tokens per request "
              f"{min(tokens):.1f}–{max(tokens):.1f} (counted from {', '.join(sources)})"
              + (f"; prompt tokens per request {statistics.mean(prompts):.1f}" if prompts else "") + "  ")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", help="seed binary; omit to run llama-server alone")
    parser.add_argument("--llama-server", help="llama-server binary; omit to run Seed alone")
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", default="2", help="comma-separated thread counts")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--parallel", type=int, default=16, help="parallel sequences (slots) of each server")
    parser.add_argument("--ctx-per-slot", type=int, default=1024,
                        help="KV positions per parallel sequence (llama-server -c and Seed --kv-cache-tokens "
                        "are parallel x this)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=16,
                        help="requests per concurrency level (split over the clients, at least 2 each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--endpoint", choices=["chat", "completions"], default="chat")
    parser.add_argument("--log-dir")
    args = parser.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if not args.seed and not args.llama_server:
        parser.error("give --seed, --llama-server or both")
    run(args)


if __name__ == "__main__":
    main()
