"""The machine's ceilings for scripts/bench-inference.sh, measured in the same run as the engines.

read_gb_s: bytes read per second by OpenBLAS sdot over two 256 MiB float32 vectors (far beyond the caches),
  median of 5: decode reads every weight once per token and writes almost nothing, so model bytes / this
  bounds single-sequence generation.
memcpy_gb_s: bytes copied per second (each byte read once and written once; STREAM "copy" counts 2x)
  for a 256 MiB buffer, median of 5; numpy copies on one thread. Reported for reference: a copy also
  writes, so it understates what a read-only stream reaches.
sgemm_gflop_s: float32 2048^3 matrix product through numpy's OpenBLAS, median of 5: prompt processing is
  compute-bound, ~2 * parameters FLOPs per token.
Thread count: OPENBLAS_NUM_THREADS (set by the caller before numpy loads).
"""
import json
import statistics
import time

import numpy as np

src = np.ones(64 << 20, dtype=np.float32)  # 256 MiB
dst = np.empty_like(src)
np.copyto(dst, src)
copies = []
for _ in range(5):
    t = time.perf_counter()
    np.copyto(dst, src)
    copies.append(src.nbytes / (time.perf_counter() - t) / 1e9)

other = np.ones_like(src)
np.dot(src, other)
reads = []
for _ in range(5):
    t = time.perf_counter()
    np.dot(src, other)
    reads.append((src.nbytes + other.nbytes) / (time.perf_counter() - t) / 1e9)

n = 2048
a = np.random.default_rng(0).random((n, n), dtype=np.float32)
b = np.random.default_rng(1).random((n, n), dtype=np.float32)
a @ b
flops = []
for _ in range(5):
    t = time.perf_counter()
    a @ b
    flops.append(2 * n**3 / (time.perf_counter() - t) / 1e9)
print(json.dumps({"read_gb_s": round(statistics.median(reads), 2),
                  "memcpy_gb_s": round(statistics.median(copies), 2), "sgemm_gflop_s": round(statistics.median(flops), 1)}))
