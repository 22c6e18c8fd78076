#!/usr/bin/env python3
"""A test double of Klaviyo's Profiles API (`GET /api/profiles`): Klaviyo cannot run here.

It serves the recorded JSON:API resources in tests/fixtures/klaviyo_api/profiles.json the
way Klaviyo does: `filter=any(id,[...])`, sparse fieldsets (`fields[profile]`),
`page[size]` (at most 100) with cursor pagination through `links.next`, the
`Authorization: Klaviyo-API-Key ...` and `revision` headers required, and Klaviyo's error
shape for 400/401/429/5xx.

Behaviour is steered through POST /__control (JSON):
  {"fail": [{"status": 429, "retry_after": 1}, {"status": 503}], "delay": 0.0, "max_page_size": 100}
`fail` answers are used up one per request, in order. GET /__stats tells how many profile
requests arrived and which ids each asked for.

    python tests/doubles/klaviyo_api.py --port 0 --api-key pk_test   # prints its URL
"""

import argparse
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/klaviyo_api/profiles.json"
MAX_PAGE_SIZE = 100
FILTER = re.compile(r'^any\(id,\[(.*)\]\)$')


def klaviyo_error(status: int, code: str, title: str, detail: str) -> dict:
    return {"errors": [{"id": "0b7f2d6e-1a9c-4c1e-9f5e-6d2c8a4b3e10", "status": status, "code": code,
                        "title": title, "detail": detail, "source": {"pointer": "/data/"}}]}


class State:
    def __init__(self, api_key: str):
        self.api_key = api_key
        self.profiles = {p["id"]: p for p in json.loads(FIXTURE.read_text())["profiles"]}
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.fail = []
            self.delay = 0.0
            self.max_page_size = MAX_PAGE_SIZE
            self.requests = []


class Handler(BaseHTTPRequestHandler):
    state: State = None
    protocol_version = "HTTP/1.1"

    def answer(self, status: int, payload: dict, headers=None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.api+json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        payload = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/__control":
            with self.state.lock:
                self.state.fail = list(payload.get("fail", []))
                self.state.delay = float(payload.get("delay", 0.0))
                self.state.max_page_size = int(payload.get("max_page_size", MAX_PAGE_SIZE))
            self.answer(200, {"ok": True})
        elif self.path == "/__reset":
            self.state.reset()
            self.answer(200, {"ok": True})
        else:
            self.answer(404, klaviyo_error(404, "not_found", "Not found.", self.path))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__stats":
            with self.state.lock:
                self.answer(200, {"calls": len(self.state.requests), "requests": self.state.requests})
            return
        if url.path.rstrip("/") != "/api/profiles":
            self.answer(404, klaviyo_error(404, "not_found", "Not found.", url.path))
            return
        query = urllib.parse.parse_qs(url.query)
        with self.state.lock:
            fail = self.state.fail.pop(0) if self.state.fail else None
            delay = self.state.delay
            max_page_size = self.state.max_page_size
        if self.headers.get("Authorization") != f"Klaviyo-API-Key {self.state.api_key}":
            self.answer(401, klaviyo_error(401, "not_authenticated", "Authentication credentials were not provided.",
                                           "Missing or invalid private key."))
            return
        if not self.headers.get("revision"):
            self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", "A revision header is required."))
            return
        match = FILTER.match(query.get("filter", [""])[0])
        if not match:
            self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", "Unsupported filter."))
            return
        ids = [part.strip().strip('"') for part in match.group(1).split(",") if part.strip()]
        with self.state.lock:
            self.state.requests.append(ids)
        if delay:
            time.sleep(delay)
        if fail:
            status = fail["status"]
            headers = {"Retry-After": str(fail["retry_after"])} if "retry_after" in fail else {}
            code = "throttled" if status == 429 else "error"
            title = "Request was throttled." if status == 429 else "A server error occurred."
            self.answer(status, klaviyo_error(status, code, title, title), headers)
            return
        page_size = min(int(query.get("page[size]", ["20"])[0]), MAX_PAGE_SIZE, max_page_size)
        fields = query.get("fields[profile]", [""])[0].split(",")
        matching = [self.state.profiles[i] for i in ids if i in self.state.profiles]
        offset = int(query.get("page[cursor]", ["0"])[0])
        page = matching[offset:offset + page_size]
        data = []
        for resource in page:
            attributes = {k: v for k, v in resource["attributes"].items() if not fields[0] or k in fields}
            data.append({"type": "profile", "id": resource["id"], "attributes": attributes,
                         "links": resource["links"]})
        base = f"http://{self.headers.get('Host')}/api/profiles/"
        next_link = None
        if offset + page_size < len(matching):
            rest = {k: v[0] for k, v in query.items() if k != "page[cursor]"}
            rest["page[cursor]"] = str(offset + page_size)
            next_link = base + "?" + urllib.parse.urlencode(rest)
        self.answer(200, {"data": data, "links": {"self": base + "?" + url.query, "next": next_link, "prev": None}})

    def log_message(self, *args):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="pk_test_double")
    args = parser.parse_args()
    Handler.state = State(args.api_key)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
