#!/usr/bin/env python3
"""Dumps a GGUF file's tokenizer metadata to JSON for the SeedTokenizers tests (needs `pip install gguf`).

usage: dump-gguf-vocab.py MODEL.gguf OUTPUT.json
Writes tokens, token_type, merges, pre, model, bos/eos ids and add_bos/add_eos flags. Keep the output outside the
repository; it is derived from the model file.
"""
import json
import sys

from gguf import GGUFReader


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    reader = GGUFReader(sys.argv[1])

    def field(name):
        f = reader.fields.get(name)
        return None if f is None else f.contents()

    dump = {
        "tokens": field("tokenizer.ggml.tokens"),
        "token_type": field("tokenizer.ggml.token_type"),
        "merges": field("tokenizer.ggml.merges"),
        "pre": field("tokenizer.ggml.pre"),
        "model": field("tokenizer.ggml.model"),
        "bos_token_id": field("tokenizer.ggml.bos_token_id"),
        "eos_token_id": field("tokenizer.ggml.eos_token_id"),
        "add_bos_token": field("tokenizer.ggml.add_bos_token"),
        "add_eos_token": field("tokenizer.ggml.add_eos_token"),
    }
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        json.dump(dump, out, ensure_ascii=False)
    print(f"{len(dump['tokens'] or [])} tokens, {len(dump['merges'] or [])} merges, pre={dump['pre']!r}")


if __name__ == "__main__":
    main()
