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

# Slow clients: a worker process that does not report for `timeout` seconds is restarted, and
# request bodies have their own, shorter limits per route (bot/web_guard.py: a small body must
# arrive within 10 s, with no silence over 5 s). Header lines and fields are bounded too.
timeout = 30
graceful_timeout = 20
keepalive = 5
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190
# An access log (when one is enabled with --access-logfile) names the path, never the query
# string: Meta's subscription check carries FB_VERIFY_TOKEN there.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s'
