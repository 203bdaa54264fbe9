"""gunicorn settings of the web process (`gunicorn --config python:bot.gunicorn_conf`, as the
Procfile runs it, and `duan8 web`), and of every app bench/webhook.py serves.

Two processes for two cores, a few threads each so a request waiting on the database does not
idle a process; gthread also keeps connections alive, as the platforms' webhook senders expect.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
# Each worker listens on its own SO_REUSEPORT socket (gunicorn ≥ 24), so the kernel spreads
# new connections over the workers. On one shared socket, the worker that wakes first takes
# every connection a client opens at once, and with keep-alive it keeps them: one process at
# full load while the other idles (seen in the webhook benchmark as a throughput halved at
# random). The cost: connections waiting in a worker's queue when it restarts are reset, and
# the platforms resend those webhooks.
reuse_port = True
