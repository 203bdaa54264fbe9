"""Members' photos fetched from a platform's own hosts, under a size and time cap.

Zalo OA, Zalo Bot and Messenger hand the worker a URL; each downloads it here, so one check of
the host, one redirect rule and one cap serve them all.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

MAX_REDIRECTS = 3
DOWNLOAD_SECONDS = 30.0


class MediaError(ValueError):
    """A picture that may not or cannot be downloaded."""


@dataclass(frozen=True)
class MediaHosts:
    """Where a platform's picture URLs may point: host suffixes over HTTPS, and the platform's
    own configured API origin (which tests point at a fake on loopback)."""

    suffixes: tuple[str, ...]
    origin: str = ""

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if self.origin and f"{parts.scheme}://{parts.netloc}" == self.origin.rstrip("/"):
            return True
        host = (parts.hostname or "").lower().rstrip(".")
        return parts.scheme == "https" and parts.username is None and any(
            host == suffix.lstrip(".") or host.endswith("." + suffix.lstrip("."))
            for suffix in self.suffixes)


async def download_capped(client: httpx.AsyncClient, url: str, max_bytes: int,
                          hosts: MediaHosts) -> bytes:
    """Download a member's photo from the platform's hosts only, under a size and time cap.

    Redirects are followed by hand, a few at most, each to an allowed host; the whole download
    has DOWNLOAD_SECONDS, however slowly the bytes come. Refusals raise MediaError.
    """
    async with asyncio.timeout(DOWNLOAD_SECONDS):
        for _hop in range(MAX_REDIRECTS + 1):
            if not hosts.allows(url):
                raise MediaError(f"not a media host of the platform: {urlsplit(url).netloc!r}")
            async with client.stream("GET", url, follow_redirects=False,
                                     timeout=httpx.Timeout(15.0, connect=5.0)) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if not response.is_success:
                    raise MediaError(f"download failed: HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise MediaError(f"photo of {declared} bytes is larger than the "
                                     f"{max_bytes} byte limit")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise MediaError(f"photo is larger than the {max_bytes} byte limit")
                return bytes(data)
    raise MediaError("too many redirects")
