"""One TLS context per process, shared by every HTTP client the channels open.

httpx builds a new context for each client it is not handed one, and building one reads the
whole CA bundle: about 20 ms of CPU each on the 2-core machine the benchmarks run on, for every
client the worker, the web process and each CLI command open. HTTPX's "SSL" guide passes a
context as `verify=`; Python's ssl documentation ("SSL Contexts") describes one context serving
many connections. It is never changed after it is built.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_tls() -> ssl.SSLContext:
    """httpx's own default verification (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR)."""
    return httpx.create_ssl_context()
