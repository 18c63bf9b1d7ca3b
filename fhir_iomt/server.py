"""Run the WSGI app under gunicorn, with the embedded database when no MONGODB_URI is set."""

import os
from contextlib import contextmanager
from pathlib import Path

from gunicorn.app.base import BaseApplication

from .config import load_config
from .store.embedded import EmbeddedMongo


class GunicornServer(BaseApplication):
    """gunicorn driven from code: an app factory and a dict of settings."""

    def __init__(self, factory, options):
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.factory()


@contextmanager
def database(config, embedded_port=None):
    """Yield the MongoDB URI: MONGODB_URI if set, else an embedded nx-27017 started for the block."""
    if config["MONGODB_URI"]:
        yield config["MONGODB_URI"], None
        return
    data_dir = Path(config["DATA_DIR"]) / "db"
    server = EmbeddedMongo(data_dir, port=embedded_port).start()
    try:
        yield server.uri, server
    finally:
        server.stop()


def _flush_audit(_arbiter, worker):
    """gunicorn worker_exit hook: store the worker's queued AuditEvents before it goes."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("fhir_iomt")
    if services is not None and not services.audit.flush(timeout=8.0):
        worker.log.error("audit events still queued at worker exit")


def serve(host, port, workers, threads, prepare, announce):
    """Serve until SIGINT/SIGTERM; the embedded database (if any) stops with the server.

    `prepare(uri, embedded)` runs before gunicorn starts (indexes, demo data);
    `announce(uri, embedded)` once gunicorn listens.
    """
    config = load_config()
    with database(config) as (uri, embedded):
        os.environ["MONGODB_URI"] = uri
        prepare(uri, embedded)
        from . import create_app

        options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "timeout": 60,
            "graceful_timeout": 10,
            "when_ready": lambda _arbiter: announce(uri, embedded),
            "worker_exit": _flush_audit,
        }
        try:
            GunicornServer(create_app, options).run()
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise
