"""Streaming load generator for OpenAI-compatible HTTP servers (standard library only).

C clients run concurrently; each sends R streaming requests back to back (`stream: true`,
`stream_options.include_usage`), cycling through a fixed set of prompts from its own offset, so every run sends
the same requests in the same order. It measures:

- tok_s: completion tokens of the successful requests / wall time (first request sent to last stream closed);
- ttft: time from sending a request to its first chunk carrying non-empty text (p50, p99 over requests);
- itl: gaps between consecutive text chunks within a request (p50 over all gaps);
- tpot: (last text chunk - first text chunk) / (completion tokens - 1), per request (p50);
- client_cpu_s: CPU time this generator spent (it shares the machine with the server under test).

Completion tokens come from the stream's `usage` object when the server sends one, else from the number of
text chunks (reported as tokens_source = "chunks"). A request fails when the status is not 200, the stream
carries an error object, the stream ends before `data: [DONE]`, or the connection breaks; failures are
counted and their first messages reported, and their tokens are left out of tok_s.

Prints one JSON object. Usage:
  serve_load.py --url http://127.0.0.1:8080 --concurrency 16 --requests-per-client 2 --max-tokens 128
  serve_load.py --self-test   (checks the parser and the accounting against a fake server)
"""

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

# Varied, realistic prompts (questions, instructions, rewriting, code, summarising) of different lengths.
PROMPTS = [
    "What is the capital of France, and what is it famous for?",
    "Write a short poem about the sea at night.",
    "Explain how a refrigerator keeps food cold, in simple terms.",
    "Give me three tips for getting better sleep.",
    "Translate into French: 'The weather is lovely today, let's go for a walk in the park.'",
    "Write a Python function that returns the n-th Fibonacci number, with a docstring.",
    "Summarise the plot of Romeo and Juliet in a few sentences.",
    "What are the main differences between a virus and a bacterium?",
    "I have eggs, spinach, cheese and bread. Suggest a quick breakfast and explain how to make it.",
    "Explain what a hash table is and why lookups are usually fast.",
    "Write a polite email to my landlord asking when the broken heating in my flat will be repaired. "
    "It has not worked for a week and the nights are getting cold.",
    "List the planets of the solar system in order from the Sun, with one fact about each.",
    "Why is the sky blue? Answer as if talking to a curious ten-year-old.",
    "Rewrite this sentence to sound more formal: 'Hey, can you send me that report thing by tomorrow?'",
    "What should I consider when choosing between renting and buying a home? Give pros and cons of each, "
    "and mention costs people often forget, such as maintenance, insurance and moving.",
    "Describe the water cycle step by step.",
]


def percentile(values, fraction):
    """Nearest-rank percentile (fraction in [0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))  # ceil(fraction * n), at least 1
    return ordered[min(rank, len(ordered)) - 1]


class RequestResult:
    def __init__(self):
        self.ok = False
        self.error = None
        self.ttft = None
        self.text_chunk_times = []
        self.usage_completion_tokens = None
        self.usage_prompt_tokens = None
        self.started = None
        self.finished = None


def sse_events(response):
    """Yields the data payload (str) of each server-sent event; joins multi-line data per the SSE rules."""
    data_lines = []
    while True:
        raw = response.readline()
        if not raw:
            if data_lines:
                yield "\n".join(data_lines)
            return
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data_lines:
                yield "\n".join(data_lines)
                data_lines = []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data_lines.append(value)
        # other fields (event, id, retry) carry nothing we need; an error event still has a data payload


def chunk_text(chunk, chat):
    """The generated text a chunk carries ('' when none)."""
    texts = []
    for choice in chunk.get("choices") or []:
        if chat:
            delta = choice.get("delta") or {}
            texts.append(delta.get("content") or "")
        else:
            texts.append(choice.get("text") or "")
    return "".join(texts)


def run_request(url, path, body, timeout):
    result = RequestResult()
    chat = path.endswith("/chat/completions")
    connection_class = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(url.hostname, url.port, timeout=timeout)
    payload = json.dumps(body).encode()
    try:
        result.started = time.perf_counter()
        connection.request("POST", path, body=payload, headers={"Content-Type": "application/json",
                                                                "Accept": "text/event-stream"})
        response = connection.getresponse()
        if response.status != 200:
            result.error = f"HTTP {response.status}: {response.read(300).decode('utf-8', 'replace').strip()}"
            return result
        done = False
        for data in sse_events(response):
            now = time.perf_counter()
            if data.strip() == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                result.error = f"bad JSON in stream: {data[:200]!r}"
                return result
            if "error" in chunk:
                result.error = f"error in stream: {json.dumps(chunk['error'])[:300]}"
                return result
            if chunk_text(chunk, chat):
                if result.ttft is None:
                    result.ttft = now - result.started
                result.text_chunk_times.append(now)
            usage = chunk.get("usage")
            if usage:
                result.usage_completion_tokens = usage.get("completion_tokens")
                result.usage_prompt_tokens = usage.get("prompt_tokens")
        if not done:
            result.error = "stream ended before data: [DONE]"
            return result
        result.finished = time.perf_counter()
        result.ok = True
        return result
    except (OSError, http.client.HTTPException, UnicodeDecodeError) as error:
        result.error = f"{type(error).__name__}: {error}"
        return result
    finally:
        connection.close()


def request_body(args, prompt):
    body = {
        "model": args.model,
        "max_tokens": args.max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if args.ignore_eos:
        body["ignore_eos"] = True
    if args.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return body


def run_load(args):
    url = urllib.parse.urlsplit(args.url)
    path = "/v1/chat/completions" if args.endpoint == "chat" else "/v1/completions"
    results = [[] for _ in range(args.concurrency)]
    barrier = threading.Barrier(args.concurrency + 1)

    def client(index):
        barrier.wait()
        for k in range(args.requests_per_client):
            prompt = PROMPTS[(index * args.requests_per_client + k) % len(PROMPTS)]
            results[index].append(run_request(url, path, request_body(args, prompt), args.timeout))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    cpu_start = time.process_time()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - cpu_start

    flat = [r for rs in results for r in rs]
    succeeded = [r for r in flat if r.ok]
    failed = [r for r in flat if not r.ok]
    from_usage = all(r.usage_completion_tokens is not None for r in succeeded)
    tokens = [r.usage_completion_tokens if from_usage else len(r.text_chunk_times) for r in succeeded]
    ttfts = [r.ttft for r in succeeded if r.ttft is not None]
    gaps = [b - a for r in succeeded for a, b in zip(r.text_chunk_times, r.text_chunk_times[1:])]
    tpots = [(r.text_chunk_times[-1] - r.text_chunk_times[0]) / (n - 1)
             for r, n in zip(succeeded, tokens) if n > 1 and len(r.text_chunk_times) > 1]
    prompt_tokens = [r.usage_prompt_tokens for r in succeeded if r.usage_prompt_tokens is not None]

    def ms(value):
        return None if value is None else round(value * 1000, 2)

    return {
        "concurrency": args.concurrency,
        "requests": len(flat),
        "failures": len(failed),
        "errors": sorted({r.error for r in failed})[:5],
        "completion_tokens": sum(tokens),
        "tokens_source": "usage" if from_usage else "chunks",
        "mean_completion_tokens": round(statistics.mean(tokens), 1) if tokens else None,
        "mean_prompt_tokens": round(statistics.mean(prompt_tokens), 1) if prompt_tokens else None,
        "text_chunks": sum(len(r.text_chunk_times) for r in succeeded),
        "wall_s": round(wall, 3),
        "client_cpu_s": round(client_cpu, 3),
        "tok_s": round(sum(tokens) / wall, 2) if wall > 0 else None,
        "ttft_p50_ms": ms(percentile(ttfts, 0.5)),
        "ttft_p99_ms": ms(percentile(ttfts, 0.99)),
        "itl_p50_ms": ms(percentile(gaps, 0.5)),
        "tpot_p50_ms": ms(percentile(tpots, 0.5)),
    }


def self_test():
    """Runs the generator against scripts/bench/fake_openai_server.py and checks what it counts."""
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    server = subprocess.Popen([sys.executable, os.path.join(here, "fake_openai_server.py"), "--port", "0",
                               "--fail-every", "5", "--truncate-every", "7"],
                              stdout=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().strip()
        checks = []
        for endpoint in ("chat", "completions"):
            args = argparse.Namespace(url=base, endpoint=endpoint, model="fake", max_tokens=20, concurrency=4,
                                      requests_per_client=5, ignore_eos=True, timeout=30)
            report = run_load(args)
            # The fake server numbers requests globally per endpoint: every 5th answers 503, every 7th (not 5th)
            # is cut before [DONE]; requests 1..20 -> 4 with 503, 2 truncated (7, 14), 14 succeed.
            checks.append((endpoint, report["requests"] == 20, "requests"))
            checks.append((endpoint, report["failures"] == 6, f"failures {report['failures']}"))
            checks.append((endpoint, sum("HTTP 503" in e for e in report["errors"]) == 1, "503 reported"))
            checks.append((endpoint, any("[DONE]" in e for e in report["errors"]), "truncation reported"))
            checks.append((endpoint, report["tokens_source"] == "usage", "usage used"))
            checks.append((endpoint, report["completion_tokens"] == 14 * 20, f"tokens {report['completion_tokens']}"))
            # 20 tokens come as 10 two-token chunks: tokens from usage, not from chunk counts.
            checks.append((endpoint, report["text_chunks"] == 14 * 10, f"chunks {report['text_chunks']}"))
            checks.append((endpoint, report["ttft_p50_ms"] is not None and report["ttft_p50_ms"] >= 20,
                           f"ttft {report['ttft_p50_ms']}"))
        failed = [c for c in checks if not c[1]]
        for endpoint, ok, what in checks:
            print(f"{'ok  ' if ok else 'FAIL'} {endpoint}: {what}")
        return 1 if failed else 0
    finally:
        server.terminate()
        server.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="server base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--endpoint", choices=["chat", "completions"], default="chat")
    parser.add_argument("--model", default="default", help="the request's model field")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests-per-client", type=int, default=4)
    parser.add_argument("--ignore-eos", action="store_true", help="send ignore_eos: true (a non-standard field)")
    parser.add_argument("--timeout", type=float, default=600, help="socket timeout per request, seconds")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        sys.exit(self_test())
    if not args.url:
        parser.error("--url is required")
    if args.concurrency < 1 or args.requests_per_client < 1 or args.max_tokens < 1:
        parser.error("--concurrency, --requests-per-client and --max-tokens must be positive")
    print(json.dumps(run_load(args)))


if __name__ == "__main__":
    main()
