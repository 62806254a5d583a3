"""A Prometheus text counter of create outcomes, and a listener of its own to serve it.

One process serves the API (gunicorn, one worker, many threads: gunicorn.conf.py), so a counter
in memory is the pod's whole count; several worker processes would each count a part.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "orders_requests_total"


class Counter:
    def __init__(self, mode):
        self.mode = mode
        self._lock = threading.Lock()
        self._counts = {}

    def inc(self, outcome):
        with self._lock:
            self._counts[outcome] = self._counts.get(outcome, 0) + 1

    def get(self, outcome):
        with self._lock:
            return self._counts.get(outcome, 0)

    def text(self):
        with self._lock:
            items = sorted(self._counts.items())
        lines = ["# HELP %s POST /orders requests by outcome." % NAME, "# TYPE %s counter" % NAME]
        lines += ['%s{mode="%s",outcome="%s"} %d' % (NAME, self.mode, o, n) for o, n in items]
        return ("\n".join(lines) + "\n").encode()


def serve(counter, port):
    """Serve /metrics on port in a daemon thread: apart from the API port, so that the Service
    and the NetworkPolicy can leave it closed to clients."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = counter.text()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, name="metrics", daemon=True).start()
    return srv
