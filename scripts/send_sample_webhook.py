#!/usr/bin/env python3
"""Send a correctly signed Klaviyo system webhook to a running endpoint.

Signs the body the way Klaviyo does: lowercase hex HMAC-SHA256, keyed by the write key,
over the raw body bytes followed directly by the Klaviyo-Timestamp header value.
Standard library only, so it runs on any machine with Python 3.

    python3 scripts/send_sample_webhook.py --write-key KEY
"""

import argparse
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import urllib.parse
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:3000/webhooks/klaviyo"
DEFAULT_BODY = Path(__file__).resolve().parent.parent / "tests/fixtures/webhooks/all_six_collections.json"


def sign(write_key: str, body: bytes, timestamp: str) -> str:
    """Klaviyo's signature of `body` sent at `timestamp`."""
    return hmac.new(write_key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def http_date(unix_seconds: float) -> str:
    """The documented Klaviyo-Timestamp form, e.g. 'Thu, 04 Jan 2024 18:05:25 GMT'."""
    return email.utils.formatdate(unix_seconds, usegmt=True)


def post_webhook(url, body, write_key, timestamp=None, webhook_id=None, signature=None,
                 content_type="application/json", timeout=10):
    """POST `body`; returns (status, parsed JSON answer). Every header can be overridden
    so tests can send deliberately wrong ones."""
    timestamp = timestamp if timestamp is not None else http_date(time.time())
    if webhook_id is None:
        webhook_id = json.loads(body)["meta"]["klaviyo_webhook_id"]
    headers = {
        "Content-Type": content_type,
        "Klaviyo-Webhook-Id": webhook_id,
        "Klaviyo-Timestamp": timestamp,
        "Klaviyo-Signature": signature if signature is not None else sign(write_key, body, timestamp),
    }
    return post(url, body, headers, timeout)


def post(url, body, headers, timeout=10):
    """POST and return (status, parsed JSON answer). A server may answer (413) before it
    has read the whole body and close the connection; the answer is still read then."""
    target = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=timeout)
    try:
        connection.putrequest("POST", target.path or "/")
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            connection.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading; its answer says why
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--write-key", default=os.environ.get("WRITE_KEY"),
                        help="the endpoint's write key (default: $WRITE_KEY)")
    parser.add_argument("--body", type=Path, default=DEFAULT_BODY,
                        help="webhook body to send (default: one event of each of the six collections)")
    args = parser.parse_args()
    if not args.write_key:
        parser.error("--write-key (or WRITE_KEY) is required")
    status, answer = post_webhook(args.url, args.body.read_bytes(), args.write_key)
    print(status, json.dumps(answer))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
