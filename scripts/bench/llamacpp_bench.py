"""llama.cpp's side of scripts/bench-inference.sh: llama-bench's pp/tg convention through llama-cpp-python.

Prints one JSON object like `seed bench --json`: pp_tok_s, tg_tok_s (medians), load_s, rss_mb.
pp: one eval() of P random tokens from an empty cache (n_batch = n_ubatch = 512, as llama-bench).
tg: G single-token eval() calls from an empty cache. One warm-up run of each, then R timed runs.
"""
import argparse
import json
import random
import resource
import statistics
import time

import llama_cpp

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--threads", type=int, required=True)
parser.add_argument("--prompt-tokens", type=int, default=512)
parser.add_argument("--gen-tokens", type=int, default=128)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

start = time.perf_counter()
llm = llama_cpp.Llama(
    model_path=args.model,
    n_ctx=max(args.prompt_tokens, args.gen_tokens) + 16,
    n_batch=512,
    n_ubatch=512,
    n_threads=args.threads,
    n_threads_batch=args.threads,
    verbose=False,
)
load_s = time.perf_counter() - start
rng = random.Random(1)
vocab = llm.n_vocab()
prompt = [rng.randrange(vocab) for _ in range(args.prompt_tokens)]


def time_prompt():
    llm.reset()
    llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
    t = time.perf_counter()
    llm.eval(prompt)
    return time.perf_counter() - t


def time_generation():
    llm.reset()
    llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
    token = 1
    t = time.perf_counter()
    for _ in range(args.gen_tokens):
        llm.eval([token])
        token = int(llm.scores[llm.n_tokens - 1].argmax())
    return time.perf_counter() - t


result = {"load_s": round(load_s, 4), "threads": args.threads}
if args.prompt_tokens > 0:
    time_prompt()
    result["pp_tok_s"] = round(statistics.median(args.prompt_tokens / time_prompt() for _ in range(args.repeats)), 2)
if args.gen_tokens > 0:
    time_generation()
    result["tg_tok_s"] = round(statistics.median(args.gen_tokens / time_generation() for _ in range(args.repeats)), 2)
result["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(result))
