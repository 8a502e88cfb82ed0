"""A fake OpenAI-compatible streaming server for testing serve_load.py (standard library only).

POST /v1/completions and /v1/chat/completions stream max_tokens tokens as max_tokens / 2 chunks of two
tokens each (after a 25 ms "prefill"), in HTTP/1.1 chunked encoding, then a usage chunk split over two
`data:` lines and `data: [DONE]`. Chat streams start with a role-only delta (no text). A ': keep-alive' comment
precedes the first chunk. Requests are numbered per endpoint from 1: with --fail-every K, every K-th answers
503; with --truncate-every K, every K-th (not already failed) stops before [DONE]. GET /health answers 200.
Prints its base URL on the first line of stdout.
"""

import argparse
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--fail-every", type=int, default=0)
parser.add_argument("--truncate-every", type=int, default=0)
args = parser.parse_args()

counters = {"/v1/completions": itertools.count(1), "/v1/chat/completions": itertools.count(1)}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def do_GET(self):
        body = b'{"status":"ok"}' if self.path == "/health" else b'{"error":"not found"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def write_chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path not in counters:
            self.send_error(404)
            return
        with lock:
            number = next(counters[self.path])
        if args.fail_every and number % args.fail_every == 0:
            body = b'{"error":{"message":"overloaded","code":503}}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        truncate = args.truncate_every and number % args.truncate_every == 0
        chat = self.path.endswith("chat/completions")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.write_chunk(": keep-alive\n\n")
        if chat:
            self.write_chunk('data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n')
        time.sleep(0.025)
        tokens = request["max_tokens"]
        for i in range(tokens // 2):
            if truncate and i == 2:
                break
            piece = {"delta": {"content": "ab"}} if chat else {"text": "ab"}
            self.write_chunk("data: " + json.dumps({"choices": [{"index": 0, **piece}]}) + "\n\n")
            time.sleep(0.002)
        if not truncate:
            usage = json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": tokens}})
            half = usage.index('"usage"')
            self.write_chunk(f"data: {usage[:half]}\ndata: {usage[half:]}\n\n")
            self.write_chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
