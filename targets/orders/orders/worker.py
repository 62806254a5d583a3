"""gunicorn's threaded worker, telling the application when each request was queued.

gthread hands a connection to its thread pool when a request may be read from it (a new
connection, or a kept-alive one that became readable) and queues it while every thread is busy.
That wait is invisible to the application, which would count its deadline from the moment a
thread picks the request up: under a database outage, with every thread waiting on connects,
requests queued behind them went unanswered past their clients' timeouts. This worker stamps
the monotonic time of the hand-over into environ (app.QUEUED_AT), so that the request's
deadline counts its time in the queue, and a request that waited its whole budget there is
answered 503 at once instead of adding its own waits to the queue.
"""

import threading
import time

from gunicorn.workers.gthread import ThreadWorker

from .app import QUEUED_AT

_local = threading.local()


class Worker(ThreadWorker):
    def enqueue_req(self, conn):
        conn.orders_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        # The pool's thread that runs handle also calls the application (handle_request).
        _local.queued_at = getattr(conn, "orders_queued_at", None)
        try:
            return super().handle(conn)
        finally:
            _local.queued_at = None

    def load_wsgi(self):
        super().load_wsgi()
        app = self.wsgi

        def stamped(environ, start_response):
            if getattr(_local, "queued_at", None) is not None:
                environ[QUEUED_AT] = _local.queued_at
            return app(environ, start_response)

        self.wsgi = stamped
