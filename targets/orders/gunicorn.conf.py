# gunicorn settings for the orders API (gunicorn -c gunicorn.conf.py).
#
# One worker process with many threads: the work is waiting on PostgreSQL, which releases the
# GIL, and one process keeps the outcome counter and the pod's identity whole (several workers
# would each count a part). Settings are checked here, before the worker starts, so that a bad
# one stops the pod with one line instead of gunicorn's "Worker failed to boot".
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orders import settings as _settings  # noqa: E402

try:
    _s = _settings.load()
except _settings.SettingsError as _e:
    sys.stderr.write("orders: %s\n" % _e)
    sys.exit(2)

bind = ["0.0.0.0:%d" % _s.port]
workers = 1
# gthread, plus the time each request was queued for a thread (orders/worker.py): a request's
# deadline (ORDERS_REQUEST_DEADLINE_MS) counts from its arrival, not from its thread's start.
worker_class = "orders.worker.Worker"
threads = _s.threads
# The heartbeat file: the root filesystem is read-only, /tmp is an emptyDir.
worker_tmp_dir = os.environ.get("ORDERS_TMP_DIR", "/tmp")
# A request is bounded by ORDERS_REQUEST_DEADLINE_MS; this only catches a stuck worker.
timeout = 30
# Within the pod's terminationGracePeriodSeconds (25) after the preStop sleep.
graceful_timeout = 15
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = "warning"
# Its own log lines are logfmt (orders/app.py); gunicorn's are few and at warning or above.
wsgi_app = "orders.wsgi:start()"
