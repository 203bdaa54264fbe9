"""Zalo OA tokens: one stored pair, refreshed ahead of expiry, never reused once spent.

Wire facts (PLATFORMS.md, Zalo OA section; chatwoot `app/services/zalo_oa/client.rb` and
`app/models/channel/zalo_oa.rb`; the PKCE challenge as in chatwoot
`app/services/zalo/generate_challenge_service.rb`):
- `POST {ZALO_OAUTH_URL}/v4/oa/access_token`, form body, the app secret in a `secret_key` header;
  `grant_type=refresh_token` with `refresh_token` and `app_id`, or `grant_type=authorization_code`
  with `code`, `app_id` and `code_verifier`.
- The answer is `{"access_token", "refresh_token", "expires_in"}` (seconds, sometimes a string), or
  `{"error": <negative>, "error_name" | "error_description" | "message": ...}` with HTTP 200.
- An access token lives about 25 h; a refresh token about 3 months and can be used ONCE.
- The permission page: `{ZALO_OAUTH_URL}/v4/oa/permission` with app_id, redirect_uri,
  code_challenge and state.

Crash safety. A refresh spends the stored refresh token the moment Zalo answers, so the new pair
must be durable before anything else happens. Every refresh therefore runs as ONE database
transaction: take the lock (an advisory lock on PostgreSQL, the write lock that BEGIN IMMEDIATE
takes on SQLite), re-read the stored pair (another process may have refreshed already: then its
pair is used and Zalo is not called), call Zalo, write the new pair, commit. Between Zalo's answer
and the commit there is only JSON parsing and three small UPDATEs. The residual risk: if the
process dies (or the connection to the database drops) inside that window, or the HTTP answer is
lost after Zalo processed the call (a timeout), the transaction rolls back, the database keeps the
old pair, and its refresh token is already spent. Nothing can recover it; the next refresh fails
with a message naming `duan8 zalo authorize`, which issues a new pair (putting a new
ZALO_OA_REFRESH_TOKEN in the environment works too: a changed value is adopted, see `_seed`).
The old access token keeps working until it expires (≈25 h, refreshed 1 h ahead), which is the
time there is to notice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bot.channels.port import ChannelPort, Database, KeptValues, utcnow
from bot.channels.tls import client_tls
from bot.config import Config

log = logging.getLogger(__name__)

VERIFIER_LENGTH = 43
VERIFIER_ALPHABET = string.ascii_letters + string.digits

ACCESS_KEY = "zalo.access_token"
REFRESH_KEY = "zalo.refresh_token"
EXPIRES_KEY = "zalo.access_expires_at"
SEED_KEY = "zalo.config_seed"  # digest of the env tokens last adopted, so a new one is noticed
TOKEN_LOCK_KEY = 8_0260  # advisory lock: one refresh at a time across processes
REFRESH_AHEAD = timedelta(hours=1)  # refresh when less than this is left of the access token
DEFAULT_LIFETIME = timedelta(hours=25)  # Zalo's access token lifetime when expires_in is missing
OAUTH_TIMEOUT = 10.0  # seconds; on SQLite the write lock is held this long at worst
KEEPER_INTERVAL = 600.0  # seconds between token checks when nothing is being sent
RELOAD_SECONDS = 60.0  # how long the in-memory pair is trusted before re-reading the database
AUTHORIZE_HINT = "run `duan8 zalo authorize` to issue a new pair"


class ZaloTokenError(Exception):
    """Zalo refused or did not answer a token request; `code` is Zalo's, None for network."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TokenPair:
    """What is stored: the access token, its expiry (None when unknown) and the refresh token."""

    access_token: str | None
    refresh_token: str | None
    access_expires_at: datetime | None = None

    def expiring(self, now: datetime, ahead: timedelta) -> bool:
        """Whether to refresh: no access token, less than `ahead` left, or an unknown expiry.

        An expiry is unknown only for tokens pasted into the environment; refreshing them at
        once learns it, and shows a wrong ZALO_APP_SECRET at start instead of a day later.
        """
        if not self.access_token:
            return True
        if self.access_expires_at is None:
            return bool(self.refresh_token)
        return self.access_expires_at - now < ahead


def _fingerprint(config: Config) -> str:
    """A digest of the env tokens, stored instead of the tokens themselves."""
    raw = f"{config.zalo_oa_access_token or ''}\n{config.zalo_oa_refresh_token or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()


def read_pair(values: KeptValues) -> TokenPair:
    """The stored pair, as the last successful refresh left it."""
    expires = values.get(EXPIRES_KEY)
    return TokenPair(values.get(ACCESS_KEY) or None, values.get(REFRESH_KEY) or None,
                     datetime.fromisoformat(expires) if expires else None)


def stored_pair(db: Database) -> TokenPair:
    """The stored pair, read under the token lock (never half of a refresh)."""
    with ChannelPort(db).locked(TOKEN_LOCK_KEY) as values:
        return read_pair(values)


def _write(values: KeptValues, pair: TokenPair) -> None:
    """The one place a pair is written; callers commit right after."""
    values.put(ACCESS_KEY, pair.access_token or "")
    values.put(REFRESH_KEY, pair.refresh_token or "")
    values.put(EXPIRES_KEY, pair.access_expires_at.isoformat() if pair.access_expires_at else "")


def _seed(values: KeptValues, config: Config) -> TokenPair:
    """The stored pair; env tokens are adopted when none is stored or when they changed.

    The env keeps its first refresh token forever, long after it was spent, so it is adopted
    only when its digest differs from the one adopted last: an admin who pastes a new token
    into the environment is heard, a restart with the old one is not.
    """
    stored = read_pair(values)
    if not (config.zalo_oa_access_token or config.zalo_oa_refresh_token):
        return stored
    seen = values.get(SEED_KEY)
    if seen == _fingerprint(config) and (stored.access_token or stored.refresh_token):
        return stored
    values.put(SEED_KEY, _fingerprint(config))
    if seen is None and (stored.access_token or stored.refresh_token):
        return stored  # tokens came from `zalo authorize` before the env was ever read
    pair = TokenPair(config.zalo_oa_access_token, config.zalo_oa_refresh_token, None)
    _write(values, pair)
    return pair


def _parse_answer(response: httpx.Response, now: datetime) -> TokenPair:
    """A token answer as a pair, or ZaloTokenError with Zalo's code and words."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code >= 500 or not isinstance(body, dict):
        raise ZaloTokenError(f"Zalo OAuth answered HTTP {response.status_code} without a token")
    if not body.get("access_token") or not body.get("refresh_token"):
        code = body.get("error")
        words = body.get("error_description") or body.get("error_name") or body.get("message")
        raise ZaloTokenError(f"Zalo OAuth refused: {code} {words or 'no token in the answer'}",
                             int(str(code)) if str(code).lstrip("-").isdigit() else None)
    seconds = str(body.get("expires_in") or "")
    lifetime = timedelta(seconds=int(seconds)) if seconds.isdigit() else DEFAULT_LIFETIME
    return TokenPair(str(body["access_token"]), str(body["refresh_token"]), now + lifetime)


def _oauth_call(config: Config, fields: dict[str, str], now: datetime) -> TokenPair:
    """One call to the token endpoint; the app secret travels in the `secret_key` header."""
    if not config.zalo_app_id or not config.zalo_app_secret:
        raise ZaloTokenError("ZALO_APP_ID and ZALO_APP_SECRET must be set to obtain Zalo tokens")
    try:
        with httpx.Client(verify=client_tls(),
                          timeout=httpx.Timeout(OAUTH_TIMEOUT, connect=5.0)) as client:
            response = client.post(f"{config.zalo_oauth_url}/v4/oa/access_token",
                                   data={**fields, "app_id": config.zalo_app_id},
                                   headers={"secret_key": config.zalo_app_secret})
    except httpx.HTTPError as exc:
        # Zalo may have spent the refresh token before the answer was lost: see the module doc.
        raise ZaloTokenError(f"Zalo OAuth unreachable: {type(exc).__name__}: {exc}") from None
    return _parse_answer(response, now)


class ZaloTokens:
    """The worker's access token: cached in memory, refreshed ahead of expiry and on -216."""

    def __init__(self, config: Config, db: Database, *, ahead: timedelta = REFRESH_AHEAD,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.port = ChannelPort(db)
        self.ahead = ahead
        self.clock = clock
        # Tests set this to simulate a crash between Zalo's answer and the commit.
        self.after_answer: Callable[[TokenPair], None] | None = None
        self._lock = asyncio.Lock()
        self._pair: TokenPair | None = None
        self._read_at = 0.0

    def load(self) -> TokenPair:
        """Read (and on first use seed from the environment) the stored pair."""
        with self.port.locked(TOKEN_LOCK_KEY) as values:
            pair = _seed(values, self.config)
        self._pair, self._read_at = pair, time.monotonic()
        return pair

    async def current(self) -> TokenPair:
        """The pair, re-read now and then so a refresh by another process is picked up."""
        if self._pair is None or time.monotonic() - self._read_at > RELOAD_SECONDS:
            return await asyncio.to_thread(self.load)
        return self._pair

    async def ensure_fresh(self) -> str:
        """An access token good for at least a while; refreshes first when it is near expiry."""
        pair = await self.current()
        if pair.expiring(self.clock(), self.ahead) and pair.refresh_token:
            try:
                pair = await self.refresh()
            except ZaloTokenError:
                still_valid = pair.access_token and (
                    pair.access_expires_at is None or pair.access_expires_at > self.clock())
                if not still_valid:
                    raise
                log.warning("Zalo token refresh failed; the current token is used while it lasts",
                            exc_info=True)
        if not pair.access_token:
            raise ZaloTokenError(f"no Zalo access token is stored; {AUTHORIZE_HINT}")
        return pair.access_token

    async def refresh(self, rejected: str | None = None) -> TokenPair:
        """Refresh once, even when many senders ask at once; `rejected` is a token Zalo refused.

        With `rejected`, a stored access token other than it means another task or process
        refreshed already, and that one is returned without calling Zalo. Without it, the
        stored pair is refreshed only if it is still near expiry.
        """
        async with self._lock:
            pair = await asyncio.to_thread(self._refresh_locked, rejected)
            self._pair, self._read_at = pair, time.monotonic()
            return pair

    def _refresh_locked(self, rejected: str | None) -> TokenPair:
        """The whole refresh in one transaction under the token lock (see the module doc)."""
        with self.port.locked(TOKEN_LOCK_KEY) as values:
            stored = _seed(values, self.config)
            if rejected is not None:
                needed = not stored.access_token or stored.access_token == rejected
            else:
                needed = stored.expiring(self.clock(), self.ahead)
            if not needed:
                return stored
            if not stored.refresh_token:
                raise ZaloTokenError(f"no Zalo refresh token is stored; {AUTHORIZE_HINT}")
            try:
                fresh = _oauth_call(self.config, {"grant_type": "refresh_token",
                                                  "refresh_token": stored.refresh_token},
                                    self.clock())
            except ZaloTokenError as exc:
                if exc.code is not None:
                    raise ZaloTokenError(f"{exc}; the stored refresh token is no longer valid: "
                                         f"{AUTHORIZE_HINT}", exc.code) from None
                raise
            if self.after_answer is not None:
                self.after_answer(fresh)
            _write(values, fresh)
        log.info("Zalo access token refreshed; valid until %s", fresh.access_expires_at)
        return fresh


class TokenKeeper:
    """Keeps the tokens alive when nothing is sent: a refresh token unused for ≈3 months dies."""

    def __init__(self, tokens: ZaloTokens, *, interval: float = KEEPER_INTERVAL) -> None:
        self.tokens = tokens
        self.interval = interval

    async def run(self, stop: threading.Event) -> None:
        """Check the tokens now and every `interval` seconds until the worker stops."""
        while not stop.is_set():
            try:
                await self.tokens.ensure_fresh()
            except Exception as exc:  # a keeper that dies would let the refresh token lapse
                log.error("Zalo token check failed: %s", exc)
            waited = 0.0
            while waited < self.interval and not stop.is_set():
                await asyncio.sleep(1.0)
                waited += 1.0


# --- first-time authorisation (`duan8 zalo authorize`) ---------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A code verifier of 43 letters and digits and its S256 challenge.

    RFC 7636 allows 43 to 128 characters, but Zalo's own SDKs ("zalo-java-sdk",
    "zalo-dotnet-sdk": `generateCodeVerifier`) make 43, and Zalo's OAuth v4 guide, as integrators
    quote it, asks for a verifier of 43 alphanumeric characters; a longer one risks the code
    exchange, the only way back from a lapsed token pair.
    """
    verifier = "".join(secrets.choice(VERIFIER_ALPHABET) for _ in range(VERIFIER_LENGTH))
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(config: Config, redirect_uri: str) -> tuple[str, str, str]:
    """The OA permission page an admin opens, with the verifier and state to keep until the code."""
    if not config.zalo_app_id:
        raise ValueError("ZALO_APP_ID must be set")
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    query = urlencode({"app_id": config.zalo_app_id, "redirect_uri": redirect_uri,
                       "code_challenge": challenge, "state": state})
    return f"{config.zalo_oauth_url}/v4/oa/permission?{query}", verifier, state


def code_from_redirect(answer: str, state: str | None = None) -> str:
    """The `code` from what the admin pasted: the bare code or the whole redirect URL."""
    answer = answer.strip()
    if "code=" not in answer:
        if not answer:
            raise ValueError("no code given")
        return answer
    query = parse_qs(urlsplit(answer).query or answer.lstrip("?"))
    given_state = (query.get("state") or [""])[0] or None
    if state is not None and given_state is not None and given_state != state:
        raise ValueError("the state in the redirect does not match: start again")
    code = (query.get("code") or [""])[0]
    if not code:
        raise ValueError("the redirect URL holds no code")
    return code


async def exchange_code(config: Config, db: Database, code: str, verifier: str) -> TokenPair:
    """Trade the permission code for a pair and store it, like a refresh (same lock, one step)."""

    def exchange() -> TokenPair:
        """Runs in a thread: one transaction from the lock to the commit."""
        with ChannelPort(db).locked(TOKEN_LOCK_KEY) as values:
            _seed(values, config)  # records the env digest, so the env never overrides this pair
            pair = _oauth_call(config, {"grant_type": "authorization_code", "code": code,
                                        "code_verifier": verifier}, utcnow())
            _write(values, pair)
        return pair

    pair = await asyncio.to_thread(exchange)
    log.info("Zalo tokens stored; access token valid until %s", pair.access_expires_at)
    return pair
