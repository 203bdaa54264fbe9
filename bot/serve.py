"""Running the processes: web under gunicorn or werkzeug, the worker loop, or both at once."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

from bot.config import Config
from bot.dispatcher import Wakeup
from storage.db import Database

log = logging.getLogger(__name__)


def gunicorn_app(*, host: str, port: int, workers: int) -> Any:
    """`bot.wsgi:app` under the Procfile's gunicorn settings, with this command's address."""
    from gunicorn.app.base import BaseApplication

    from bot import gunicorn_conf

    class _App(BaseApplication):
        def load_config(self) -> None:
            for name in ("worker_class", "threads", "reuse_port"):
                self.cfg.set(name, getattr(gunicorn_conf, name))
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            from bot.wsgi import app

            return app

    return _App()


def run_gunicorn(*, host: str, port: int, workers: int) -> None:
    """Serve the web process until gunicorn is told to stop."""
    gunicorn_app(host=host, port=port, workers=workers).run()


def run_worker(config: Config, db: Database, stop: threading.Event | None = None,
               wakeup: Wakeup | None = None) -> None:
    """The worker process: the outbox sender until SIGTERM/SIGINT or `stop` is set."""
    from bot.startup import tune_process
    from bot.worker import Worker

    tune_process(db)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    asyncio.run(Worker(config, db, wakeup).run(stop))


def run_all(config: Config, db: Database, *, host: str) -> None:
    """Web and worker in one process: the laptop default, on SQLite."""
    from werkzeug.serving import make_server

    from bot import web_guard
    from bot.app import create_app
    from bot.startup import tune_process

    tune_process(db)
    wakeup = Wakeup()
    app = create_app(config, db=db, wakeup=wakeup)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(config, db, stop, wakeup), name="worker")
    worker.start()
    server = make_server(host, config.port, app, threaded=True,
                         request_handler=web_guard.PathOnlyRequestHandler)
    log.info("duan8 listening on http://%s:%s (web chat at /chat)", host, config.port)
    # shutdown() waits for serve_forever() to return, so it must run on another thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        worker.join(timeout=10)
