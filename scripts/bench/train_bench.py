"""PyTorch side of scripts/bench-train.sh: times full training steps of the Llama a Seed training config describes.

The model is Seed's TrainableLlama written in plain PyTorch: token embedding, per layer RMSNorm -> q/k/v projections
(no bias) -> rotate-half RoPE -> causal softmax attention (grouped-query when kv_heads < heads) -> o projection ->
residual, RMSNorm -> SwiGLU MLP (gate, up, down; no bias) -> residual; final RMSNorm; output head tied to the
embedding when model.tie_embeddings (the default), else a separate lm_head. Defaults follow
Sources/SeedTrain/TrainingConfig.swift (kv_heads = heads, rope_theta 1e4, norm_eps 1e-5, AdamW betas (0.9, 0.95),
eps 1e-8, weight decay 0.1 on everything except norm weights, grad_clip 1.0, micro_batch_size = batch_size).

One step, as `seed bench-train`: zero the gradients, forward + backward over batch_size / micro_batch_size
micro-batches (each loss the summed cross-entropy over the step's batch_size * seq_len targets), clip the global
gradient norm, AdamW step at the constant lr. Tokens: SplitMix64 of (seed * 2^32 + index) mod vocab over each
step's [batch_size, seq_len + 1] block, the same stream Seed trains on.

Modes: eager (float32), bf16 (torch.autocast CPU bfloat16; weights, gradients and AdamW stay float32), compile
(torch.compile of the model, float32). Prints one JSON object; exits 1 if --expect-parameters differs from the
model's parameter count.
"""
import argparse
import json
import os
import statistics
import sys
import time
import tomllib

import torch
import torch.nn.functional as F
from torch import nn

MASK = (1 << 64) - 1


def splitmix_token(seed, index, vocab):
    z = (seed * (1 << 32) + index + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    z ^= z >> 31
    return z % vocab


class RMSNorm(nn.Module):
    def __init__(self, width, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Block(nn.Module):
    def __init__(self, m):
        super().__init__()
        h, heads, kv = m["hidden_size"], m["heads"], m["kv_heads"]
        d = h // heads
        self.heads, self.kv_heads, self.d = heads, kv, d
        self.input_layernorm = RMSNorm(h, m["norm_eps"])
        self.q_proj = nn.Linear(h, heads * d, bias=False)
        self.k_proj = nn.Linear(h, kv * d, bias=False)
        self.v_proj = nn.Linear(h, kv * d, bias=False)
        self.o_proj = nn.Linear(heads * d, h, bias=False)
        self.post_attention_layernorm = RMSNorm(h, m["norm_eps"])
        self.gate_proj = nn.Linear(h, m["intermediate_size"], bias=False)
        self.up_proj = nn.Linear(h, m["intermediate_size"], bias=False)
        self.down_proj = nn.Linear(m["intermediate_size"], h, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        y = self.input_layernorm(x)
        q = self.q_proj(y).view(b, t, self.heads, self.d).transpose(1, 2)
        k = self.k_proj(y).view(b, t, self.kv_heads, self.d).transpose(1, 2)
        v = self.v_proj(y).view(b, t, self.kv_heads, self.d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.kv_heads != self.heads)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, self.heads * self.d))
        y = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))


class Llama(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.embed_tokens = nn.Embedding(m["vocab_size"], m["hidden_size"])
        self.layers = nn.ModuleList(Block(m) for _ in range(m["layers"]))
        self.norm = RMSNorm(m["hidden_size"], m["norm_eps"])
        self.lm_head = nn.Linear(m["hidden_size"], m["vocab_size"], bias=False)
        if m["tie_embeddings"]:
            self.lm_head.weight = self.embed_tokens.weight
        d = m["hidden_size"] // m["heads"]
        inverse = 1.0 / (m["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        angles = torch.outer(torch.arange(m["context_length"], dtype=torch.float64), inverse)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)
        for name, p in self.named_parameters():
            if not name.endswith("norm.weight"):
                nn.init.normal_(p, std=0.02)

    def forward(self, inputs, targets, normalizer):
        t = inputs.shape[1]
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.embed_tokens(inputs)
        for layer in self.layers:
            x = layer(x, cos, sin)
        logits = self.lm_head(self.norm(x)).float()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum") / normalizer


def load_config(path, overrides):
    with open(path, "rb") as f:
        c = tomllib.load(f)
    for text in overrides:
        key, value = text.split("=", 1)
        section, name = key.split(".", 1)
        c.setdefault(section, {})[name] = tomllib.loads(f"v = {value}")["v"]
    m = dict(c["model"])
    m.setdefault("kv_heads", m["heads"])
    m.setdefault("rope_theta", 10000.0)
    m.setdefault("norm_eps", 1e-5)
    m.setdefault("tie_embeddings", True)
    t = dict(c["training"])
    t.setdefault("micro_batch_size", t["batch_size"])
    t.setdefault("seed", 0)
    o = {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0}
    o.update(c.get("optimizer", {}))
    return m, t, o


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--mode", choices=["eager", "bf16", "compile"], default="eager")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--expect-parameters", type=int)
    parser.add_argument("--peak-gflops", type=float)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--steps and --threads must be >= 1, --warmup >= 0")
    torch.set_num_threads(args.threads)
    m, t, o = load_config(args.config, args.overrides)
    torch.manual_seed(t["seed"])
    model = Llama(m)
    parameters = sum(p.numel() for p in model.parameters())
    if args.expect_parameters is not None and parameters != args.expect_parameters:
        print(f"parameter count {parameters} differs from Seed's {args.expect_parameters}", file=sys.stderr)
        sys.exit(1)
    decay = [p for n, p in model.named_parameters() if not n.endswith("norm.weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("norm.weight")]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    forward = torch.compile(model) if args.mode == "compile" else model

    batch, micro, seq = t["batch_size"], t["micro_batch_size"], t["seq_len"]
    width = seq + 1
    total_steps = args.warmup + args.steps
    stream = [splitmix_token(t["seed"], i, m["vocab_size"]) for i in range(total_steps * batch * width)]
    blocks = torch.tensor(stream, dtype=torch.long).view(total_steps, batch, width)
    normalizer = float(batch * seq)

    def step(index):
        optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for start in range(0, batch, micro):
            rows = blocks[index, start:start + micro]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.mode == "bf16"):
                loss = forward(rows[:, :-1], rows[:, 1:], normalizer)
            loss.backward()
            loss_sum += loss.item()
        if o["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o["grad_clip"])
        optimizer.step()
        return loss_sum

    losses, seconds = [], []
    compile_start = time.perf_counter()
    for i in range(args.warmup):
        losses.append(step(i))
    warmup_seconds = time.perf_counter() - compile_start
    for i in range(args.warmup, total_steps):
        start = time.perf_counter()
        losses.append(step(i))
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    tokens_per_step = batch * seq
    flops_per_token = 6 * parameters + 6 * m["layers"] * m["hidden_size"] * seq
    result = {
        "engine": "torch", "mode": args.mode, "torch": torch.__version__, "threads": args.threads,
        "parameters": parameters, "batch_size": batch, "micro_batch_size": micro, "seq_len": seq,
        "tokens_per_step": tokens_per_step, "steps": args.steps, "warmup": args.warmup,
        "warmup_s": round(warmup_seconds, 2), "step_seconds": [round(s, 4) for s in seconds],
        "median_step_s": round(median, 4), "tokens_per_s": round(tokens_per_step / median, 1),
        "flops_per_token": flops_per_token, "first_loss": round(losses[0], 4), "last_loss": round(losses[-1], 4),
    }
    if args.peak_gflops:
        result["peak_gflop_s"] = args.peak_gflops
        result["mfu"] = round(tokens_per_step / median * flops_per_token / (args.peak_gflops * 1e9), 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
