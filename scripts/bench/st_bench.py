"""sentence-transformers side of scripts/bench-embeddings.sh: the same work as `seed bench-embed`.

One timed run is `SentenceTransformer.encode(texts, batch_size=B, normalize_embeddings=True)` over every line of
--file (tokenization, the BERT forward pass, pooling and normalisation, as in Seed's run). PyTorch runs float32 on
the CPU with torch.set_num_threads(--threads). Prints one JSON object with the keys `seed bench-embed --json`
prints: the median over --repeats runs after one warm-up run.
"""
import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="sentence-transformers model directory")
    parser.add_argument("--file", required=True, help="texts, one per line")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    with open(args.file, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    start = time.perf_counter()
    model = SentenceTransformer(args.model, device="cpu")
    load_s = time.perf_counter() - start
    # Tokens per pass, [CLS] and [SEP] included, after truncation to max_seq_length (as Seed counts them).
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # `tokenize` before sentence-transformers 6
    tokens = int(preprocess(texts)["attention_mask"].sum())

    def embed_all() -> float:
        t = time.perf_counter()
        vectors = model.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False)
        assert vectors.shape[0] == len(texts)
        return time.perf_counter() - t

    embed_all()
    rates = [len(texts) / embed_all() for _ in range(args.repeats)]
    rate = statistics.median(rates)
    print(json.dumps({
        "load_s": round(load_s, 4),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "sentences": len(texts),
        "tokens": tokens,
        "sentences_per_s": round(rate, 2),
        "tokens_per_s": round(rate * tokens / len(texts), 1),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
