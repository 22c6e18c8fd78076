"""A stand-in of the Lambda Runtime API, for running the deployed binaries as Lambda runs
them: the process starts with `AWS_LAMBDA_RUNTIME_API` pointing here, asks for its next event,
and posts the response (or an error). It serves one event, then holds the next `next` call,
as Lambda does between invocations. Written from AWS's documentation of the custom runtime
interface (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), never from the
project's code:

| what | AWS's words |
|---|---|
| `GET /2018-06-01/runtime/invocation/next` | "The runtime calls this method to get the next invocation event" |
| headers `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`, `Lambda-Runtime-Invoked-Function-Arn`, `Lambda-Runtime-Trace-Id` | the response headers of Next invocation |
| `POST /2018-06-01/runtime/invocation/{AwsRequestId}/response` | "sends an invocation response to Lambda" |
| `POST /2018-06-01/runtime/init/error`, `.../invocation/{id}/error` | the init and invocation error endpoints |
| init ends at the first Next call | "the runtime … calls the next invocation API" once initialization is done (the Init phase of the execution environment lifecycle, https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html) |

Used by tests/e2e/test_lambda_binaries.py and bench/init_time.py.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RuntimeApi:
    """One invocation's worth of the Runtime API; records the answer and times the calls."""

    def __init__(self, event: dict, deadline_seconds: float = 29.0):
        self.event = json.dumps(event).encode()
        self.first_next = None
        self.response_at = None
        self.response = None
        self.error = None
        self.served = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self.send_error(404)
                    return
                if api.first_next is None:
                    api.first_next = time.monotonic()
                if api.served:  # the one event is done: hold the runtime here
                    time.sleep(3600)
                    return
                api.served = True
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
                self.send_header("Lambda-Runtime-Deadline-Ms",
                                 str(int((time.time() + deadline_seconds) * 1000)))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:eu-west-1:123456789012:function:stand-in")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(api.event)))
                self.end_headers()
                self.wfile.write(api.event)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                if self.path.endswith("/response"):
                    api.response_at = time.monotonic()
                    api.response = body
                else:
                    api.error = body
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # The process is killed once it has answered: its dropped connection is expected.
        self.server.handle_error = lambda request, address: None
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def shutdown(self):
        self.server.shutdown()
