"""Writes the embedding benchmark's texts: real English sentences of varied lengths, one per line.

The sentences are cut from the license texts every Debian system ships in /usr/share/common-licenses (GPL-3,
Apache-2.0, GPL-2, LGPL-3, MPL-2.0, in that order), so every machine gets the same set without a download:
whitespace collapsed, split after '.', ';', ':', '?' or '!' before a capital, digit, quote or parenthesis, sentences
of fewer than 3 words dropped, the first COUNT kept. Lengths run from 3 to about 200 words (the longest are
truncated to the model's 256 tokens by both engines).

Usage: python3 embed_sentences.py OUT [COUNT]   (default 256)
"""
import re
import sys

LICENSES = ["GPL-3", "Apache-2.0", "GPL-2", "LGPL-3", "MPL-2.0"]


def main() -> None:
    out, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 256
    sentences = []
    for name in LICENSES:
        with open(f"/usr/share/common-licenses/{name}", encoding="utf-8") as f:
            text = re.sub(r"\s+", " ", f.read())
        for s in re.split(r'(?<=[.;:?!])\s+(?=[A-Z"(0-9])', text):
            s = s.strip()
            if len(s.split()) >= 3:
                sentences.append(s)
    if len(sentences) < count:
        sys.exit(f"only {len(sentences)} sentences available, {count} asked for")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(sentences[:count]) + "\n")


if __name__ == "__main__":
    main()
