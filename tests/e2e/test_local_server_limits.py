"""The local server under a hostile network: half-open connections and stalled uploads
neither stop it answering nor pin memory for good (header and body time limits, a
connection cap). Bounded: every socket is closed, every wait has a limit."""

import json
import socket
import urllib.request


HEADER_READ_TIMEOUT_S = 5   # functions/cli/src/local_server.rs, as the README states
BODY_READ_TIMEOUT_S = 15    # functions/endpoint/src/request_body.rs, as the README states


def address(endpoint):
    host, port = endpoint.base_url.removeprefix("http://").split(":")
    return host, int(port)


def health(endpoint, timeout):
    with urllib.request.urlopen(endpoint.base_url + "/health", timeout=timeout) as response:
        return response.status, json.loads(response.read())


def half_open(endpoint):
    """A connection that is started (without waiting: past the cap and the listen backlog
    the kernel holds the handshake) and never sends a byte."""
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(address(endpoint))
    return s


def test_half_open_connections_do_not_stop_the_server(endpoint):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    # More than the server's 512 connections.
    sockets = [half_open(endpoint) for _ in range(600)]
    try:
        # More idle connections than the cap: /health waits at most until the header time
        # limit closes the idle ones.
        assert health(endpoint, timeout=HEADER_READ_TIMEOUT_S * 4) == (200, {"status": "ok"})
        # The idle connections were closed by the server: reading gives end of stream.
        closed = 0
        for s in sockets[:20]:
            s.setblocking(True)
            s.settimeout(HEADER_READ_TIMEOUT_S * 3)
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 0
        assert closed == 20
    finally:
        for s in sockets:
            s.close()


def test_stalled_uploads_are_answered_408_and_released(endpoint):
    # The webhook route takes bodies up to 4 MiB (the Segment routes stop at 500 KB).
    declared = 4 * 1024 * 1024 - 1024
    head = (f"POST /webhooks/klaviyo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()
    sockets = []
    try:
        for _ in range(50):
            s = socket.create_connection(address(endpoint), timeout=5)
            s.sendall(head + b" " * (declared - 1))
            sockets.append(s)
        assert health(endpoint, timeout=10)[0] == 200, "stalled uploads hold no worker"
        for s in sockets:
            s.settimeout(BODY_READ_TIMEOUT_S * 3)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    finally:
        for s in sockets:
            s.close()


def test_requests_full_of_colliding_names_neither_stall_nor_freeze_health(endpoint):
    import copy
    import threading

    from conftest import ROOT, WRITE_KEY
    from send_sample_webhook import post_webhook
    template = json.loads((ROOT / "tests/fixtures/webhooks/all_six_collections.json").read_text())
    event = copy.deepcopy(template["data"][1])
    # 16,000 keys that all flatten to the column name `a`.
    event["payload"]["data"]["attributes"]["event_properties"] = {
        "a" + "!" * (i % 64) + " " * (i // 64 + 1): i for i in range(16_000)}
    answers = []

    def send(n):
        body = copy.deepcopy(template)
        one = copy.deepcopy(event)
        one["payload"]["data"]["id"] = f"collide{n}"
        body["data"] = [one]
        answers.append(post_webhook(endpoint.webhook_url, json.dumps(body).encode(), WRITE_KEY, timeout=120))

    senders = [threading.Thread(target=send, args=(n,)) for n in range(3)]
    for sender in senders:
        sender.start()
    try:
        assert health(endpoint, timeout=10)[0] == 200
    finally:
        for sender in senders:
            sender.join(timeout=180)
    assert [status for status, _ in answers] == [200, 200, 200], answers


def raw_answer(endpoint, request: bytes) -> bytes:
    with socket.create_connection(address(endpoint), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return answer
            answer += chunk


def test_requests_hyper_cannot_parse_get_json_errors_too(endpoint):
    too_many_headers = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
        f"X-Pad-{i}: {i}\r\n".encode() for i in range(200)) + b"\r\n"
    bad_length = b"POST /webhooks/klaviyo HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n"
    for request, status in [(too_many_headers, b"431"), (bad_length, b"400")]:
        answer = raw_answer(endpoint, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status), answer[:200]
        assert b"content-type: application/json" in head.lower(), head
        error = json.loads(body)
        assert error["code"] == error["error"] and error["message"], error


def test_a_real_request_is_answered_within_a_second_while_200_clients_trickle_headers(endpoint):
    """200 clients that keep sending header bytes slowly (each stays under the header time
    limit for seconds) must not hold the slots a real request needs: connections waiting for
    their headers cost a socket, not a request's memory, so they have a cap of their own."""
    import threading
    import time
    stop = threading.Event()
    sockets = []
    for _ in range(200):
        s = socket.create_connection(address(endpoint), timeout=5)
        s.sendall(b"POST /webhooks/klaviyo HTTP/1.1\r\nHost: x\r\n")
        sockets.append(s)

    def trickle():
        while not stop.is_set():
            for s in sockets:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            time.sleep(0.2)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        assert health(endpoint, timeout=10) == (200, {"status": "ok"})
        assert time.monotonic() - started < 1.0
    finally:
        stop.set()
        thread.join(timeout=5)
        for s in sockets:
            s.close()
