"""A local stand-in for the FX-rates API: an HTTP server on 127.0.0.1, in a thread of this process.

It serves the API of docs/sources/fx_rates.md: `GET /v1/rates?date=YYYY-MM-DD&page=N` with
`Authorization: Bearer <key>`, deterministic rates for every day (`rates_for`), split into pages.
Tests switch on faults the real API can show: slow answers (client timeouts), 5xx, 429, malformed
bodies, missing days, bad entries, broken pagination (`inject`). Every request is logged (`requests`).

    with FxFixtureServer() as api:
        api.inject(Fault.SERVER_ERROR, times=2)     # the next two requests get HTTP 503
        ... FX_API_BASE_URL=api.base_url ...
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from lambdas.contracts import fx_rates as contract

# Obviously fake, local only; provision puts it into the local cloud's secret.
FIXTURE_API_KEY = "local-only-fx-fixture-key"
DEFAULT_PAGE_SIZE = 8
MAX_LOGGED_REQUESTS = 10_000
API_PREFIX = "/v1"
REDIRECT_PATH = f"{API_PREFIX}/moved"

# Roughly what one unit was worth in USD in 2026: the centre each day's rate moves around.
_CENTRES: dict[str, float] = {
    "AUD": 0.66, "BRL": 0.18, "CAD": 0.72, "CHF": 1.13, "CNY": 0.14, "CZK": 0.044, "DKK": 0.145,
    "EUR": 1.08, "GBP": 1.27, "HKD": 0.128, "INR": 0.012, "JPY": 0.0066, "KRW": 0.00072, "MXN": 0.055,
    "NOK": 0.092, "NZD": 0.6, "PLN": 0.25, "SEK": 0.095, "SGD": 0.74, "ZAR": 0.054,
}
_SPREAD = 0.04  # a day's rate is within ±2 % of the centre


def rates_for(day: date) -> dict[str, float]:
    """The fixture's rates of `day`, every contract currency: the same day always gives the same rates."""
    rates = {}
    for currency in contract.CURRENCIES:
        digest = hashlib.sha256(f"{currency}:{day.isoformat()}".encode()).digest()
        unit = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
        rates[currency] = float(f"{_CENTRES[currency] * (1 + _SPREAD * (unit - 0.5)):.6g}")
    return rates


class Fault(enum.Enum):
    """What a matching request gets instead of its normal answer."""

    TIMEOUT = "timeout"                  # no answer for `slow_seconds`, then the normal one
    SERVER_ERROR = "server_error"        # HTTP 503
    RATE_LIMITED = "rate_limited"        # HTTP 429 with Retry-After: `retry_after`
    MISSING_DAY = "missing_day"          # HTTP 404: no rates for the day
    REDIRECT = "redirect"                # HTTP 302 to REDIRECT_PATH on this server (a client must not follow)
    EMPTY_DAY = "empty_day"              # HTTP 200, a valid page without rates
    NOT_JSON = "not_json"                # the normal body cut in half
    SCHEMA_MISMATCH = "schema_mismatch"  # "rates" as an object {currency: rate}
    WRONG_DATE = "wrong_date"            # the previous day's page
    WRONG_QUOTE = "wrong_quote"          # quoted in EUR
    PAGINATION_LOOP = "pagination_loop"  # next_page points at the page itself
    BAD_ENTRIES = "bad_entries"          # BAD_ENTRY_COUNTS added to the page's valid entries
    DUPLICATES = "duplicates"            # the page's first entry repeated, its second one with another rate


# What Fault.BAD_ENTRIES adds to a page, by the reason code the contract gives each.
BAD_ENTRY_COUNTS = {contract.Reason.UNKNOWN_CURRENCY: 1, contract.Reason.BAD_RATE: 3, contract.Reason.BAD_ENTRY: 1}


@dataclass
class _Injection:
    fault: Fault
    dates: frozenset[date] | None
    pages: frozenset[int] | None
    remaining: int | None  # None: every matching request

    def matches(self, day: date, page: int) -> bool:
        return (self.remaining is None or self.remaining > 0) and \
            (self.dates is None or day in self.dates) and (self.pages is None or page in self.pages)


@dataclass(frozen=True)
class Request:
    path: str
    day: date | None
    page: int | None
    status: int            # the status answered (a TIMEOUT's, late)
    fault: Fault | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request still sleeping in a TIMEOUT never blocks stop()
    fixture: "FxFixtureServer"


class FxFixtureServer:
    """Start with `with FxFixtureServer() as api:`; `api.base_url` is the FX_API_BASE_URL to use.
    `port` 0 takes a free one; a fixed port gives a long-running local cloud a stable URL."""

    def __init__(self, api_key: str = FIXTURE_API_KEY, page_size: int = DEFAULT_PAGE_SIZE,
                 slow_seconds: float = 1.0, retry_after: str = "0", port: int = 0) -> None:
        self.api_key, self.page_size, self.port = api_key, page_size, port
        self.slow_seconds, self.retry_after = slow_seconds, retry_after
        self._defaults = (page_size, slow_seconds, retry_after)
        self._lock = threading.Lock()
        self._injections: list[_Injection] = []
        # bounded: a long-running local cloud (`lakehouse up`) keeps its fixture for hours
        self._requests: deque[Request] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FxFixtureServer":
        server = _Server(("127.0.0.1", self.port), _Handler)  # port 0: a free port, chosen by the kernel
        server.fixture = self
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fx-fixture", daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}{API_PREFIX}"
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes requests sleeping in a TIMEOUT
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> "FxFixtureServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- test controls ---------------------------------------------------------------------------
    def inject(self, fault: Fault, *, dates: list[date] | None = None, pages: list[int] | None = None,
               times: int | None = None) -> None:
        """Answer matching requests (all dates/pages when None) with `fault`, `times` times (None: always).
        The first matching injection, in the order given, applies."""
        with self._lock:
            self._injections.append(_Injection(fault, frozenset(dates) if dates is not None else None,
                                               frozenset(pages) if pages is not None else None, times))

    def reset(self) -> None:
        """No faults, an empty request log, the constructor's page size and timings."""
        with self._lock:
            self._injections.clear()
            self._requests.clear()
            self.page_size, self.slow_seconds, self.retry_after = self._defaults

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def page_count(self) -> int:
        """Pages of every day at the current page size."""
        return max(1, math.ceil(len(contract.CURRENCIES) / self.page_size))

    # --- serving ---------------------------------------------------------------------------------
    def _take_fault(self, day: date, page: int) -> Fault | None:
        with self._lock:
            for injection in self._injections:
                if injection.matches(day, page):
                    if injection.remaining is not None:
                        injection.remaining -= 1
                    return injection.fault
        return None

    def _log(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _page(self, day: date, page: int) -> dict[str, Any]:
        currencies = sorted(rates_for(day).items())[(page - 1) * self.page_size: page * self.page_size]
        last = self.page_count
        return {"date": day.isoformat(), "quote_currency": contract.QUOTE_CURRENCY, "page": page,
                "next_page": page + 1 if page < last else None,
                "rates": [{"currency": c, "rate": r} for c, r in currencies]}


def _faulty_body(fault: Fault, page: dict[str, Any], day: date) -> bytes:
    """The body a content fault serves instead of `page`."""
    if fault is Fault.EMPTY_DAY:
        page = {**page, "rates": [], "next_page": None}
    elif fault is Fault.NOT_JSON:
        text = json.dumps(page).encode()
        return text[: len(text) // 2]
    elif fault is Fault.SCHEMA_MISMATCH:
        page = {**page, "rates": {entry["currency"]: entry["rate"] for entry in page["rates"]}}
    elif fault is Fault.WRONG_DATE:
        page = {**page, "date": (day - timedelta(days=1)).isoformat()}
    elif fault is Fault.WRONG_QUOTE:
        page = {**page, "quote_currency": "EUR"}
    elif fault is Fault.PAGINATION_LOOP:
        page = {**page, "next_page": page["page"]}
    elif fault is Fault.BAD_ENTRIES:
        first = page["rates"][0]["currency"]
        page = {**page, "rates": [*page["rates"],
                                  {"currency": "XAU", "rate": 2650.0},       # UNKNOWN_CURRENCY
                                  {"currency": first, "rate": 0},            # BAD_RATE
                                  {"currency": first, "rate": math.nan},     # BAD_RATE (a bare NaN token)
                                  {"currency": first, "rate": "1.08"},       # BAD_RATE (a string)
                                  {"rate": 1.0}]}                            # BAD_ENTRY
    elif fault is Fault.DUPLICATES:
        one, two = page["rates"][0], page["rates"][1]
        page = {**page, "rates": [*page["rates"], dict(one), {**two, "rate": two["rate"] * 2}]}
    return json.dumps(page).encode()


_Answer = tuple[int, bytes, dict[str, str]]  # status, body, extra headers


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        fixture = self.server.fixture
        url = urllib.parse.urlsplit(self.path)
        day, page, fault = None, None, None
        answer = self._refusal(fixture, url)
        if answer is None:
            asked = _day_and_page(url.query)
            if asked is None:
                answer = _error(400, "bad_request", "need date=YYYY-MM-DD and page=N")
            else:
                day, page = asked
                fault = fixture._take_fault(day, page) if 1 <= page <= fixture.page_count else None
                answer = self._answer(fixture, day, page, fault)
        # Logged before answering, so a client that has its answer finds its request in the log.
        fixture._log(Request(url.path, day, page, answer[0], fault))
        if fault is Fault.TIMEOUT and fixture._stopping.wait(fixture.slow_seconds):
            return  # stopping: no answer at all
        self._send(*answer)

    def _refusal(self, fixture: FxFixtureServer, url: urllib.parse.SplitResult) -> _Answer | None:
        if url.path != f"{API_PREFIX}/rates":
            return _error(404, "not_found", f"no endpoint {url.path}")
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {fixture.api_key}".encode()):
            return _error(401, "unauthorized", "missing or wrong API key", {"WWW-Authenticate": "Bearer"})
        return None

    def _answer(self, fixture: FxFixtureServer, day: date, page: int, fault: Fault | None) -> _Answer:
        """The page, or what the fault serves instead (TIMEOUT: the page, late)."""
        if not 1 <= page <= fixture.page_count:
            return _error(404, "no_such_page", f"{day} has no page {page}")
        if fault is Fault.SERVER_ERROR:
            return _error(503, "unavailable", "try again later")
        if fault is Fault.RATE_LIMITED:
            return _error(429, "rate_limited", "slow down", {"Retry-After": fixture.retry_after})
        if fault is Fault.MISSING_DAY:
            return _error(404, "no_rates", f"no rates published for {day}")
        if fault is Fault.REDIRECT:
            host, port = self.server.server_address[:2]
            return _error(302, "moved", "see Location", {"Location": f"http://{host}:{port}{REDIRECT_PATH}"})
        body = fixture._page(day, page)
        if fault is None or fault is Fault.TIMEOUT:
            return 200, json.dumps(body).encode(), {}
        return 200, _faulty_body(fault, body, day), {}

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", "Content-Length": str(len(body)),
                                **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): what a real server sees too

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Quiet: the request log (`FxFixtureServer.requests`) is the record."""


def _day_and_page(query: str) -> tuple[date, int] | None:
    values = urllib.parse.parse_qs(query)
    try:
        return date.fromisoformat(values["date"][0]), int(values.get("page", ["1"])[0])
    except (KeyError, ValueError):
        return None


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> _Answer:
    return status, json.dumps({"error": error, "message": message}).encode(), headers or {}
