#!/usr/bin/env python3
"""A test double of Klaviyo's Events, Metrics and Metric Aggregates APIs: Klaviyo cannot run
here. Every behaviour is written from Klaviyo's documents; tests/doubles/README.md lists each
one with its source. It imports nothing from the project.

Served:
  GET  /api/accounts             the key's account (its id is what webhooks call klaviyo_account_id)
  GET  /api/metrics              the account's metrics (JSON:API)
  GET  /api/events               filter=equals(metric_id,"..."),greater-or-equal(datetime,...),
                                 less-than(datetime,...); sort=datetime; page[size] (max 1000,
                                 default 200); include=profile (and metric); sparse fields; opaque
                                 cursors in links.next
  POST /api/metric-aggregates    daily counts of a metric

Steered through:
  POST /__reset                   forget everything
  POST /__metrics  {"metrics": [{"id", "name", "integration_key"}]}       (replaces)
  POST /__profiles {"profiles": [{"id", "email", "external_id"}]}         (adds)
  POST /__events   {"events": [{"id", "metric_id", "profile_id", "datetime", "properties",
                    "attributions": [{"id", "attributed_event", "campaign", "campaign_message",
                                      "flow", "flow_message", "flow_message_variation"}]}]}
                   (adds; an event added after a read is "late": Klaviyo is eventually consistent)
  POST /__series   {"metric_id", "prefix", "start", "count", "step_us", "profiles"}
                   (adds `count` generated events, one every step_us microseconds, without
                   holding them in memory: for large histories)
  POST /__control  {"fail": [{"status": 503}, {"status": 429, "retry_after": 2, "path": "/api/events"}],
                    "delay": 0.0,
                    "max_page_size": 1000, "burst_per_second": 350, "steady_per_minute": 3500,
                    "cursor_ttl": null, "expire_cursors": false, "forbidden": false}
  GET  /__stats    every request: time, path, status

    python tests/doubles/klaviyo_events_api.py --port 0 --api-key pk_test   # prints its URL
"""

import argparse
import base64
import bisect
import datetime as dt
import hashlib
import json
import math
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_PAGE_SIZE = 1000      # "up to 1000 with page[size]" (Get Events, revision 2026-01-15+)
DEFAULT_PAGE_SIZE = 200   # "Returns 200 events per page by default"
BURST_PER_SECOND = 350    # Get Events: "Burst: 350/s"
STEADY_PER_MINUTE = 3500  # Get Events: "Steady: 3500/m"
# Every endpoint has its own limits, per account, in fixed 1 s and 60 s windows ("Rate
# limits, status codes, and errors"): Get Metrics is M (10/s, 150/m), Query Metric
# Aggregates S (3/s, 60/m).
OTHER_LIMITS = {"/api/metrics": (10, 150), "/api/metric-aggregates": (3, 60), "/api/accounts": (1, 15)}
ACCOUNT_ID = "XyZ9Ab"     # a public-key-shaped id (six characters), as Klaviyo's are
CONDITION = re.compile(r'(equals|greater-or-equal|greater-than|less-than|less-or-equal)\((\w+),("?)([^,)"]*)\3\)')


def klaviyo_error(status, code, title, detail):
    return {"errors": [{"id": "6c1d3b8e-2f4a-4e7b-9a1c-0d5e8f2b7a93", "status": status, "code": code,
                        "title": title, "detail": detail, "source": {"pointer": "/data/"}}]}


def parse_time(text):
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def to_micros(value):
    return int(value.timestamp()) * 1_000_000 + value.microsecond


def from_micros(micros):
    return dt.datetime.fromtimestamp(micros // 1_000_000, dt.timezone.utc).replace(microsecond=micros % 1_000_000)


class Series:
    """Generated events: event i is at start + i * step_us, id prefix + zero-padded i."""

    def __init__(self, metric_id, prefix, start, count, step_us, profiles):
        self.metric_id, self.prefix, self.count, self.step = metric_id, prefix, count, max(int(step_us), 0)
        self.start = to_micros(parse_time(start))
        self.profiles = max(int(profiles), 1)

    def event(self, i):
        return {"id": f"{self.prefix}{i:010d}", "metric_id": self.metric_id,
                "profile_id": f"{self.prefix}p{i % self.profiles}", "at": self.start + i * self.step,
                "properties": {"Subject": "Generated", "$message": f"{self.prefix}m{i % 97}"}}

    def first_index_after(self, key):
        """First index whose (at, id) sorts after key = (at, id)."""
        at, ident = key
        if self.step == 0:
            if at < self.start:
                return 0
            if at > self.start:
                return self.count
            return bisect.bisect_right([self.event(i)["id"] for i in range(self.count)], ident)
        i = max(0, math.ceil((at - self.start) / self.step))
        while i > 0 and (self.start + (i - 1) * self.step, self.event(i - 1)["id"]) > key:
            i -= 1
        while i < self.count and (self.start + i * self.step, self.event(i)["id"]) <= key:
            i += 1
        return min(i, self.count)

    def first_index_at_or_after(self, at):
        if self.step == 0:
            return 0 if at <= self.start else self.count
        return min(self.count, max(0, math.ceil((at - self.start) / self.step)))

    def count_between(self, low, high):
        return max(0, self.first_index_at_or_after(high) - self.first_index_at_or_after(low))


class State:
    def __init__(self, api_key):
        self.api_key = api_key
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.metrics = []
        self.profiles = {}
        self.events = []          # sorted by (at, id)
        self.series = []
        self.fail = []
        self.delay = 0.0
        self.max_page_size = MAX_PAGE_SIZE
        self.burst = BURST_PER_SECOND
        self.steady = STEADY_PER_MINUTE
        self.cursor_ttl = None
        self.expire_before = 0.0
        self.forbidden = False
        self.windows = {}
        self.requests = []

    def add_event(self, event):
        at = to_micros(parse_time(event["datetime"]))
        record = {"id": event["id"], "metric_id": event["metric_id"], "profile_id": event.get("profile_id"),
                  "at": at, "properties": event.get("properties", {}),
                  "attributions": event.get("attributions", [])}
        bisect.insort(self.events, record, key=lambda e: (e["at"], e["id"]))

    def page(self, metric_id, low, high, after, size):
        """Up to size + 1 events of metric_id with low <= at < high, after the key `after`."""
        found = []
        start = bisect.bisect_right(self.events, after, key=lambda e: (e["at"], e["id"])) if after else \
            bisect.bisect_left(self.events, (low, ""), key=lambda e: (e["at"], e["id"]))
        for event in self.events[start:]:
            if len(found) > size or event["at"] >= high:
                break
            if event["metric_id"] == metric_id and event["at"] >= low:
                found.append(event)
        for series in self.series:
            if series.metric_id != metric_id:
                continue
            i = series.first_index_after(after) if after else series.first_index_at_or_after(low)
            i = max(i, series.first_index_at_or_after(low))
            taken = 0
            while i < series.count and taken <= size:
                event = series.event(i)
                if event["at"] >= high:
                    break
                found.append(event)
                taken += 1
                i += 1
        found.sort(key=lambda e: (e["at"], e["id"]))
        return found[:size + 1]

    def count(self, metric_id, low, high):
        total = sum(1 for e in self.events if e["metric_id"] == metric_id and low <= e["at"] < high)
        return total + sum(s.count_between(low, high) for s in self.series if s.metric_id == metric_id)

    def limits(self, endpoint):
        return OTHER_LIMITS.get(endpoint, (self.burst, self.steady))

    def admit(self, endpoint, now):
        """The endpoint's fixed 1 s and 60 s windows: (None, steady window state) when
        admitted, else (the Retry-After seconds, None)."""
        burst, steady = self.limits(endpoint)
        second, minute = int(now), int(now // 60)
        if self.windows.get((endpoint, "s", second), 0) >= burst:
            return 1, None
        if self.windows.get((endpoint, "m", minute), 0) >= steady:
            return max(1, math.ceil((minute + 1) * 60 - now)), None
        self.windows[(endpoint, "s", second)] = self.windows.get((endpoint, "s", second), 0) + 1
        used = self.windows[(endpoint, "m", minute)] = self.windows.get((endpoint, "m", minute), 0) + 1
        return None, {"RateLimit-Limit": str(steady), "RateLimit-Remaining": str(steady - used),
                      "RateLimit-Reset": str(max(1, math.ceil((minute + 1) * 60 - now)))}


def uuid_text(event_id):
    """A UUID's text form (8-4-4-4-12 hex), fixed per event id (an MD5 of it: cheap enough
    for pages of 1,000 events at Klaviyo's full rate)."""
    h = hashlib.md5(event_id.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_resource(event, base):
    at = from_micros(event["at"])
    # Klaviyo's examples show both forms: "2022-11-08T01:23:45+00:00" and "2023-08-10 07:21:56+00:00".
    separator = "T" if int(event["id"].encode().hex(), 16) % 2 == 0 else " "
    # Whole seconds, as in every example Klaviyo publishes; the order within a second is the id's.
    text = at.isoformat(sep=separator, timespec="seconds")
    relationships = {"metric": {"data": {"type": "metric", "id": event["metric_id"]},
                                "links": {"self": f"{base}/api/events/{event['id']}/relationships/metric/",
                                          "related": f"{base}/api/events/{event['id']}/metric/"}}}
    if event.get("attributions"):
        relationships["attributions"] = {"data": [{"type": "attribution", "id": a["id"]} for a in event["attributions"]],
                                         "links": {"self": f"{base}/api/events/{event['id']}/relationships/attributions/",
                                                   "related": f"{base}/api/events/{event['id']}/attributions/"}}
    if event.get("profile_id"):
        relationships["profile"] = {"data": {"type": "profile", "id": event["profile_id"]},
                                    "links": {"self": f"{base}/api/events/{event['id']}/relationships/profile/",
                                              "related": f"{base}/api/events/{event['id']}/profile/"}}
    return {"type": "event", "id": event["id"],
            "attributes": {"timestamp": event["at"] // 1_000_000, "event_properties": event["properties"],
                           "datetime": text, "uuid": uuid_text(event["id"])},
            "relationships": relationships, "links": {"self": f"{base}/api/events/{event['id']}/"}}


PLAIN = re.compile(r"[A-Za-z0-9_.:-]+")


def event_json(event, base):
    """`event_resource(event, base)` as JSON text. Events whose ids need no escaping are
    rendered straight into text (the double must keep up with pages of 1,000 events at
    Klaviyo's full rate on a small machine); any other goes through `json.dumps`."""
    eid, mid, pid = event["id"], event["metric_id"], event.get("profile_id")
    if event.get("attributions") or not (PLAIN.fullmatch(eid) and PLAIN.fullmatch(mid)
                                         and (not pid or PLAIN.fullmatch(pid))):
        return json.dumps(event_resource(event, base))
    at = from_micros(event["at"])
    separator = "T" if int(eid.encode().hex(), 16) % 2 == 0 else " "
    text = at.isoformat(sep=separator, timespec="seconds")
    link = f"{base}/api/events/{eid}"
    relationships = (f'"metric": {{"data": {{"type": "metric", "id": "{mid}"}}, "links": {{"self": '
                     f'"{link}/relationships/metric/", "related": "{link}/metric/"}}}}')
    if pid:
        relationships += (f', "profile": {{"data": {{"type": "profile", "id": "{pid}"}}, "links": {{"self": '
                          f'"{link}/relationships/profile/", "related": "{link}/profile/"}}}}')
    return (f'{{"type": "event", "id": "{eid}", "attributes": {{"timestamp": {event["at"] // 1_000_000}, '
            f'"event_properties": {json.dumps(event["properties"])}, "datetime": "{text}", '
            f'"uuid": "{uuid_text(eid)}"}}, "relationships": {{{relationships}}}, "links": {{"self": "{link}/"}}}}')


class Handler(BaseHTTPRequestHandler):
    state: State = None
    protocol_version = "HTTP/1.1"

    def answer(self, status, payload, headers=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        # Every answer but a 429 tells the steady window's state (set by gate()).
        window, self.rate_limit_headers = getattr(self, "rate_limit_headers", None), None
        if window and status != 429:
            headers = {**window, **(headers or {})}
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.api+json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        if not self.path.startswith("/__"):
            with self.state.lock:
                self.state.requests.append({"t": time.time(), "path": self.path, "status": status})

    def read_json(self):
        length = int(self.headers.get("Content-Length", 0))
        return json.loads(self.rfile.read(length) or b"{}")

    def gate(self):
        """Authentication, scope, injected failures, the rate limit. True when the request may go on."""
        state = self.state
        if self.headers.get("Authorization") != f"Klaviyo-API-Key {state.api_key}":
            self.answer(401, klaviyo_error(401, "not_authenticated", "Authentication credentials were not provided.",
                                           "Missing or invalid private key."))
            return False
        if state.forbidden:
            self.answer(403, klaviyo_error(403, "permission_denied", "You do not have permission to perform this action.",
                                           "This API key is missing required scopes."))
            return False
        if not self.headers.get("revision"):
            self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", "A revision header is required."))
            return False
        endpoint = urllib.parse.urlsplit(self.path).path.rstrip("/")
        with state.lock:
            retry_after, self.rate_limit_headers = state.admit(endpoint, time.time())
            # An injected failure may name a part of the path it is for ({"path": "/api/events"}).
            fail = None
            if retry_after is None:
                for i, entry in enumerate(state.fail):
                    if entry.get("path", "") in self.path:
                        fail = state.fail.pop(i)
                        break
            delay = state.delay
        if retry_after is not None:
            self.answer(429, klaviyo_error(429, "throttled", "Request was throttled.",
                                           f"Request was throttled. Expected available in {retry_after} seconds."),
                        {"Retry-After": str(retry_after)})
            return False
        if delay:
            time.sleep(delay)
        if fail:
            status = fail["status"]
            headers = {"Retry-After": str(fail["retry_after"])} if "retry_after" in fail else {}
            code, title = ("throttled", "Request was throttled.") if status == 429 else ("error", "A server error occurred.")
            self.answer(status, klaviyo_error(status, code, title, title), headers)
            return False
        return True

    def do_POST(self):
        payload = self.read_json()
        state = self.state
        with state.lock:
            if self.path == "/__reset":
                state.reset()
            elif self.path == "/__metrics":
                state.metrics = list(payload["metrics"])
            elif self.path == "/__profiles":
                state.profiles.update({p["id"]: p for p in payload["profiles"]})
            elif self.path == "/__events":
                for event in payload["events"]:
                    state.add_event(event)
            elif self.path == "/__series":
                state.series.append(Series(payload["metric_id"], payload["prefix"], payload["start"],
                                           payload["count"], payload["step_us"], payload.get("profiles", 1000)))
            elif self.path == "/__control":
                state.fail = list(payload.get("fail", state.fail))
                state.delay = float(payload.get("delay", state.delay))
                state.max_page_size = int(payload.get("max_page_size", state.max_page_size))
                state.burst = int(payload.get("burst_per_second", state.burst))
                state.steady = int(payload.get("steady_per_minute", state.steady))
                state.cursor_ttl = payload.get("cursor_ttl", state.cursor_ttl)
                state.forbidden = bool(payload.get("forbidden", state.forbidden))
                if payload.get("expire_cursors"):
                    state.expire_before = time.time()
            elif self.path.rstrip("/") == "/api/metric-aggregates":
                pass
            else:
                self.answer(404, klaviyo_error(404, "not_found", "Not found.", self.path))
                return
        if self.path.rstrip("/") == "/api/metric-aggregates":
            if self.gate():
                self.metric_aggregates(payload)
            return
        self.answer(200, {"ok": True})

    def metric_aggregates(self, payload):
        attributes = payload.get("data", {}).get("attributes", {})
        bounds = {}
        for condition in attributes.get("filter", []):
            match = CONDITION.fullmatch(condition)
            if not match or match.group(2) != "datetime":
                self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", f"Unsupported filter {condition!r}."))
                return
            bounds[match.group(1)] = to_micros(parse_time(match.group(4)))
        if attributes.get("interval") != "day" or "greater-or-equal" not in bounds or "less-than" not in bounds:
            self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", "interval day and a datetime range are required."))
            return
        low, high = bounds["greater-or-equal"], bounds["less-than"]
        day = 86_400 * 1_000_000
        dates, counts = [], []
        start = low - low % day
        with self.state.lock:
            while start < high:
                dates.append(from_micros(start).isoformat())
                counts.append(float(self.state.count(attributes.get("metric_id"), max(start, low), min(start + day, high))))
                start += day
        self.answer(200, {"data": {"type": "metric-aggregate", "id": "double",
                                   "attributes": {"dates": dates,
                                                  "data": [{"dimensions": [], "measurements": {"count": counts}}]}},
                          "links": {"self": "", "next": None, "prev": None}})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__stats":
            with self.state.lock:
                body = json.dumps({"requests": self.state.requests}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        path = url.path.rstrip("/")
        if path not in ("/api/metrics", "/api/events", "/api/accounts"):
            self.answer(404, klaviyo_error(404, "not_found", "Not found.", url.path))
            return
        if not self.gate():
            return
        base = f"http://{self.headers.get('Host')}"
        if path == "/api/accounts":
            self.answer(200, {"data": [{"type": "account", "id": ACCOUNT_ID,
                                        "attributes": {"industry": "Retail", "timezone": "UTC",
                                                       "preferred_currency": "USD", "public_api_key": ACCOUNT_ID},
                                        "links": {"self": f"{base}/api/accounts/{ACCOUNT_ID}/"}}],
                              "links": {"self": f"{base}/api/accounts/", "next": None, "prev": None}})
            return
        if path == "/api/metrics":
            with self.state.lock:
                data = [{"type": "metric", "id": m["id"],
                         "attributes": {"name": m["name"], "created": "2021-03-31T10:50:37+00:00",
                                        "updated": "2021-03-31T10:50:37+00:00",
                                        "integration": {"object": "integration", "id": "0rG4eQ",
                                                        "key": m.get("integration_key", "klaviyo"),
                                                        "name": "Klaviyo", "category": "Internal"}},
                         "links": {"self": f"{base}/api/metrics/{m['id']}/"}} for m in self.state.metrics]
            self.answer(200, {"data": data, "links": {"self": f"{base}/api/metrics", "next": None, "prev": None}})
            return
        self.events(url, base)

    def events(self, url, base):
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        state = self.state
        size = int(query.get("page[size]", DEFAULT_PAGE_SIZE))
        if not 1 <= size <= state.max_page_size:
            self.answer(400, klaviyo_error(400, "invalid", "Invalid input.",
                                           f"Page size must be between 1 and {state.max_page_size}."))
            return
        conditions = {}
        for match in CONDITION.finditer(query.get("filter", "")):
            conditions[(match.group(1), match.group(2))] = match.group(4)
        metric_id = conditions.get(("equals", "metric_id"))
        try:
            low = to_micros(parse_time(conditions[("greater-or-equal", "datetime")]))
            high = to_micros(parse_time(conditions[("less-than", "datetime")]))
        except (KeyError, ValueError):
            self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", "A datetime range filter is required."))
            return
        if high > to_micros(dt.datetime.now(dt.timezone.utc)) + 1_000_000:
            self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", "Datetime filter cannot be in the future."))
            return
        if query.get("sort", "datetime") != "datetime":
            self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", "Unsupported sort."))
            return
        after = None
        if "page[cursor]" in query:
            try:
                cursor = json.loads(base64.urlsafe_b64decode(query["page[cursor]"].encode()))
                expired = cursor["issued"] < state.expire_before or (
                    state.cursor_ttl is not None and time.time() - cursor["issued"] > state.cursor_ttl)
                if cursor["filter"] != query.get("filter") or expired:
                    raise ValueError("expired")
                after = (cursor["after"][0], cursor["after"][1])
            except (ValueError, KeyError, TypeError):
                self.answer(400, klaviyo_error(400, "invalid", "Invalid input.", "Invalid cursor provided."))
                return
        with state.lock:
            found = state.page(metric_id, low, high, after, size)
            metrics = {m["id"]: m for m in state.metrics}
            profiles = dict(state.profiles)
        page, more = found[:size], len(found) > size
        data = ",".join(event_json(e, base) for e in page)
        included = []
        includes = query.get("include", "").split(",")
        if "profile" in includes:
            fields = [f for f in query.get("fields[profile]", "").split(",") if f]
            for profile_id in dict.fromkeys(e["profile_id"] for e in page if e.get("profile_id")):
                profile = profiles.get(profile_id, {"id": profile_id})
                attributes = {"email": profile.get("email"), "external_id": profile.get("external_id"),
                              "first_name": None, "phone_number": None}
                if fields:
                    attributes = {k: v for k, v in attributes.items() if k in fields}
                included.append({"type": "profile", "id": profile_id, "attributes": attributes,
                                 "links": {"self": f"{base}/api/profiles/{profile_id}/"}})
        if "attributions" in includes:
            kinds = {"attributed_event": ("attributed-event", "event"), "campaign": ("campaign", "campaign"),
                     "campaign_message": ("campaign-message", "campaign-message"), "flow": ("flow", "flow"),
                     "flow_message": ("flow-message", "flow-message"),
                     "flow_message_variation": ("flow-message-variation", "flow-message")}
            for e in page:
                for a in e.get("attributions", []):
                    included.append({"type": "attribution", "id": a["id"], "relationships": {
                        name: {"data": {"type": kind, "id": a[key]} if a.get(key) else None}
                        for key, (name, kind) in kinds.items()}})
        if "metric" in includes and page:
            metric = metrics.get(metric_id, {"name": "Unknown"})
            included.append({"type": "metric", "id": metric_id, "attributes": {"name": metric["name"]},
                             "links": {"self": f"{base}/api/metrics/{metric_id}/"}})
        next_link = None
        if more:
            last = page[-1]
            token = base64.urlsafe_b64encode(json.dumps(
                {"filter": query.get("filter"), "after": [last["at"], last["id"]], "issued": time.time()}).encode()).decode()
            rest = {k: v for k, v in query.items() if k != "page[cursor]"}
            rest["page[cursor]"] = token
            next_link = f"{base}/api/events?" + urllib.parse.urlencode(rest)
        links = json.dumps({"self": f"{base}/api/events?{url.query}", "next": next_link, "prev": None})
        body = f'{{"data": [{data}], "links": {links}'
        if included:
            body += f', "included": {json.dumps(included)}'
        self.answer(200, (body + "}").encode())

    def log_message(self, *args):
        pass


def main():
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
