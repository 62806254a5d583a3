"""gunicorn's entry point (orders.wsgi:start()): settings, keys, store, app.

The schema is put in place by a background thread that retries until the database answers,
so that the listener opens at once and /healthz/ready tells when the pod can take orders.
"""

import sys
import threading
import time

from . import keys, metrics, settings
from .app import App, Logger
from .store import StartupError, Store


def build(env=None, start_metrics=True, log_stream=None):
    """The App for env (os.environ by default); exits with one line on a bad setting."""
    try:
        s = settings.load(env)
        k = keys.Keys(keys.load(s.api_keys_file))
    except (settings.SettingsError, keys.KeysError) as e:
        sys.stderr.write("orders: %s\n" % e)
        sys.exit(2)
    log = Logger(log_stream, pod=s.pod)
    counter = metrics.Counter(s.mode)
    store = Store(s, log)
    if start_metrics and s.metrics_port:
        metrics.serve(counter, s.metrics_port)
    log("info", "starting", mode=s.mode, db=f"{s.db_host}:{s.db_port}/{s.db_name}", sslmode=s.db_sslmode,
        threads=s.threads, work_delay_ms=s.work_delay_ms)
    return App(s, store, k, counter, log)


def migrate_until_ready(app):
    delay = 0.5
    while True:
        try:
            app.store.migrate()
            app.log("info", "ready", mode=app.s.mode)
            return
        except StartupError as e:
            app.log("error", "schema not ready; retrying", error=str(e), retry_s=delay)
        time.sleep(delay)
        delay = min(delay * 2, 5)


def start(env=None):
    app = build(env)
    threading.Thread(target=migrate_until_ready, args=(app,), name="migrate", daemon=True).start()
    return app

