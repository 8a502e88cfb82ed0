"""Time from process start to the first generated token, Seed against llama.cpp, for scripts/bench-inference.sh.

Each run is a whole process: start, memory-map the model, read the vocabulary, prefill a 6-token prompt,
generate one token greedily, exit. Seed runs `seed generate -n 1`; llama.cpp runs `llama-completion -n 1`
with --no-warmup (by default it first runs an empty warm-up pass, which would only slow it down here) and
the same 4096-token context. The two alternate, run after run; the wall time of each process and its peak
RSS (from wait4) are recorded. Prints one JSON object per engine and thread count.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

PROMPT = "The capital of France is"


def run(command):
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{command[0]} failed with status {status}")
    if not output.strip():
        raise SystemExit(f"{command[0]} printed no text")
    return elapsed, usage.ru_maxrss / 1024  # KiB -> MiB


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", required=True)
    parser.add_argument("--llama-completion", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    t = str(args.threads)
    commands = {
        "seed": [args.seed, "generate", "--model", args.model, "-p", PROMPT, "-n", "1", "--temperature", "0",
                 "--quiet", "--threads", t, "--ctx-size", "4096"],
        "llamacpp": [args.llama_completion, "-m", args.model, "-p", PROMPT, "-n", "1", "--temp", "0", "-t", t,
                     "-no-cnv", "--no-warmup", "-c", "4096"],
    }
    times = {name: [] for name in commands}
    rss = {name: [] for name in commands}
    for name, command in commands.items():
        run(command)  # page cache warm for both
    for _ in range(args.repeats):
        for name, command in commands.items():
            elapsed, peak = run(command)
            times[name].append(elapsed)
            rss[name].append(peak)
    for name in commands:
        print(json.dumps({"engine": name, "threads": args.threads, "ttft_s": round(statistics.median(times[name]), 4),
                          "ttft_min_s": round(min(times[name]), 4), "ttft_max_s": round(max(times[name]), 4),
                          "rss_mb": round(statistics.median(rss[name]), 1)}))


if __name__ == "__main__":
    main()
