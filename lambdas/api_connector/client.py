"""The FX-rates API over HTTP: one page of one day per call, with timeouts and bounded retries.

The standard library's urllib is enough for a GET with a header, and keeps the function's package
free of dependencies. Redirects are refused: urllib would forward the Authorization header to
whatever host a redirect names.
"""
from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date
from typing import Callable

from lambdas.api_connector.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

# An FX page is a few KiB; anything far larger is not a page, and is not read whole into memory.
MAX_BODY_BYTES = 5 * 1024 * 1024

ApiKey = Callable[[bool], str]  # api_key(refresh) -> key; refresh=True re-reads a rotated secret


class FetchError(RuntimeError):
    """A page could not be fetched: retries ran out, or the API answered in a way no retry fixes."""


class AuthenticationError(RuntimeError):
    """The API refused the key, also after re-reading the secret: a configuration problem."""


@dataclass(frozen=True)
class Response:
    status: int      # 2xx, or 404 (no rates for the day); any other status raises
    body: bytes      # at most MAX_BODY_BYTES
    url: str         # the request URL (it carries no secret)
    truncated: bool  # the body was longer than MAX_BODY_BYTES


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def page_url(base_url: str, day: date, page: int) -> str:
    query = urllib.parse.urlencode({"date": day.isoformat(), "page": page})
    return f"{base_url.rstrip('/')}/rates?{query}"


class FxApiClient:
    def __init__(self, base_url: str, api_key: ApiKey, *, timeout: float, policy: RetryPolicy,
                 log: Callable[[str], None] = lambda message: None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url, self._api_key, self.timeout, self.policy = base_url, api_key, timeout, policy
        self._log, self._sleep = log, sleep
        self._opener = urllib.request.build_opener(_NoRedirects)
        self.retries = 0  # retried calls, over the client's life (a metric)

    def get_rates_page(self, day: date, page: int) -> Response:
        """One page of `day`'s rates; retries timeouts, connection errors, 408/429/5xx up to the policy."""
        url = page_url(self.base_url, day, page)
        refreshed = False
        attempt = 1
        while True:
            try:
                return self._get(url, self._api_key(refreshed))
            except urllib.error.HTTPError as error:
                status, retry_after = error.code, parse_retry_after(error.headers.get("Retry-After"))
                detail = _excerpt(error)
                if status in (401, 403) and not refreshed:
                    refreshed = True  # the key may have been rotated since it was cached: re-read it once
                    self._log(f"GET {url}: HTTP {status}, re-reading the API key")
                    continue
                if status in (401, 403):
                    raise AuthenticationError(f"GET {url}: HTTP {status}, the API refuses the key "
                                              "from the secret (also after re-reading it)") from None
                if status not in RETRYABLE_STATUSES:
                    raise FetchError(f"GET {url}: HTTP {status}{detail}, not retried") from None
                problem = f"HTTP {status}{detail}"
            except (TimeoutError, urllib.error.URLError, ConnectionError, http.client.HTTPException) as error:
                retry_after = None
                problem = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
            if attempt >= self.policy.max_attempts:
                raise FetchError(f"GET {url}: {problem}, gave up after {attempt} attempts")
            wait = self.policy.delay(attempt, retry_after)
            self._log(f"GET {url}: {problem}, attempt {attempt} of {self.policy.max_attempts}, "
                      f"retrying in {wait:.2f} s")
            self.retries += 1
            attempt += 1
            self._sleep(wait)

    def _get(self, url: str, key: str) -> Response:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}",
                                                       "Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return _response(url, response.status, response.read(MAX_BODY_BYTES + 1))
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            with error:  # 404: the API has no rates for the day; its body is evidence for the quarantine
                return _response(url, 404, error.read(MAX_BODY_BYTES + 1))


def _response(url: str, status: int, body: bytes) -> Response:
    return Response(status, body[:MAX_BODY_BYTES], url, truncated=len(body) > MAX_BODY_BYTES)


def _excerpt(error: urllib.error.HTTPError, limit: int = 200) -> str:
    """The start of an error body, for messages (error bodies are small and carry no secret); closes it."""
    with error:
        try:
            text = error.read(limit).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            text = ""
    return f" {text!r}" if text else ""
