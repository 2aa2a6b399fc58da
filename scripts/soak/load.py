"""The soak's clients, as real integrators behave: each partner's system submits referrals through
the API with an Idempotency-Key and its own external reference, and retries the same request
(same key, same body) on a timeout, a broken connection, a 5xx or a 429, with backoff, until it
gets an answer it can act on; officers' systems list what waits in each state and move it on,
also with Idempotency-Keys and retries. One keep-alive connection pool per client (httpx).

Everything a client was told is recorded for the checks afterwards: every acknowledged (201)
referral with its key and reference, every acknowledged (200) transition, every failed attempt
by status or error, and each client's longest run of failures.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
from stdnum.cn import ric

PRODUCT = "housing_mortgage"
RETRY_STATUSES = {429, 500, 502, 503, 504}
# What an officer does next, by state; under_review goes to declined for every fourth referral.
NEXT = {"submitted": "under_review", "under_review": "approved",
        "approved": "contract_signed", "contract_signed": "disbursed"}

_numbers = itertools.count(1)
_numbers_lock = threading.Lock()


def national_id(n: int) -> str:
    """A distinct valid 18-character ID for each n (birth dates from 1970 on)."""
    born = date(1970, 1, 1) + timedelta(days=n // 1000)
    body = f"310115{born:%Y%m%d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def referral_body(n: int, external_ref: str) -> dict:
    return {
        "product": PRODUCT,
        "buyer": {"name": "张伟", "national_id": national_id(n), "mobile": f"139{n:08d}",
                  "employer": "市第一中学", "industry": "education_science_culture_health",
                  "monthly_income": 25000},
        "amount": 700000, "term_months": 240,
        "asset": {"description": "旭日花园 3-1201", "price": 1200000, "down_payment": 400000},
        "consent": {"obtained": True, "notice_version": "2026-01",
                    "obtained_at": "2026-01-05T10:00:00+08:00"},
        "external_ref": external_ref,
    }


@dataclass
class Record:
    """What the clients were told, shared by all of them (appends under one lock)."""

    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter = field(default_factory=Counter)      # attempts, by kind
    errors: Counter = field(default_factory=Counter)        # failed attempts, by status/error
    submissions: list = field(default_factory=list)         # one dict per referral tried
    transitions: list = field(default_factory=list)         # acknowledged transitions
    outages: list = field(default_factory=list)             # (seconds, client, from, to)
    attempts: list = field(default_factory=list)            # (client, from, to, outcome)
    events: list = field(default_factory=list)              # (offset, what) from the driver

    def offset(self, at: float | None = None) -> float:
        return (at if at is not None else time.monotonic()) - self.started

    def note(self, what: str) -> None:
        with self.lock:
            self.events.append((round(self.offset(), 1), what))


class Client(threading.Thread):
    def __init__(self, name: str, base_url: str, api_key: str, record: Record,
                 stop_at: float, give_up_at: float):
        super().__init__(name=name, daemon=True)
        self.record, self.stop_at, self.give_up_at = record, stop_at, give_up_at
        self.http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0, connect=3.0),
                                 headers={"Authorization": f"Bearer {api_key}"},
                                 limits=httpx.Limits(max_keepalive_connections=2))
        self.failing_since: float | None = None
        self.last_failure_end = 0.0
        self.random = random.Random(name)

    # --- one request, retried like an integrator would --------------------------------------

    def call(self, kind: str, method: str, path: str, *, body=None, key: str | None = None,
             ok=(200,)) -> httpx.Response | None:
        headers = {"Idempotency-Key": key} if key else {}
        delay = 0.2
        while True:
            started = time.monotonic()
            outcome: int | str
            response = None
            try:
                response = self.http.request(method, path, json=body, headers=headers)
                outcome = response.status_code
            except httpx.TransportError as exc:
                outcome = type(exc).__name__
            with self.record.lock:
                self.record.requests[kind] += 1
                self.record.attempts.append((self.name, round(self.record.offset(started), 3),
                                             round(self.record.offset(), 3), outcome))
            if response is not None and response.status_code not in RETRY_STATUSES:
                self._answered(started)
                if response.status_code not in ok:
                    with self.record.lock:
                        self.record.errors[f"{outcome} (not retried)"] += 1
                return response
            self._failed(started, outcome)
            if time.monotonic() > self.give_up_at:
                return None
            wait = delay
            if response is not None and response.headers.get("Retry-After", "").isdigit():
                wait = max(wait, float(response.headers["Retry-After"]))
            time.sleep(wait * (0.5 + self.random.random()))
            delay = min(delay * 2, 3.0)

    def _failed(self, started: float, outcome) -> None:
        with self.record.lock:
            self.record.errors[str(outcome)] += 1
        if self.failing_since is None:
            self.failing_since = started
        self.last_failure_end = time.monotonic()

    def _answered(self, started: float) -> None:
        # An outage as this client saw it: from the start of its first failed request to the
        # start of the next one that was answered.
        if self.failing_since is not None:
            self._outage(self.failing_since, started)
            self.failing_since = None

    def _outage(self, since: float, until: float) -> None:
        with self.record.lock:
            self.record.outages.append((until - since, self.name, self.record.offset(since),
                                        self.record.offset(until)))

    def finish(self) -> None:
        if self.failing_since is not None:  # still failing when it gave up
            self._outage(self.failing_since, self.last_failure_end)
        self.http.close()


class Partner(Client):
    """A partner's system: submits a referral, waits a moment, submits the next."""

    def __init__(self, *args, org: str, think: tuple[float, float], **kwargs):
        super().__init__(*args, **kwargs)
        self.org, self.think = org, think

    def run(self) -> None:
        try:
            for seq in itertools.count(1):
                if time.monotonic() >= self.stop_at:
                    return
                with _numbers_lock:
                    n = next(_numbers)
                ref, key = f"SOAK-{self.org}-{seq}", str(uuid.uuid4())
                response = self.call("submit", "POST", "/api/v1/referrals",
                                     body=referral_body(n, ref), key=key, ok=(201,))
                entry = {"org": self.org, "external_ref": ref, "key": key,
                         "status": response.status_code if response is not None else None}
                if response is not None and response.status_code == 201:
                    entry["id"] = response.json()["id"]
                    entry["replayed"] = response.headers.get("Idempotent-Replayed") == "true"
                with self.record.lock:
                    self.record.submissions.append(entry)
                time.sleep(self.random.uniform(*self.think))
        finally:
            self.finish()


class Officer(Client):
    """An officer's system: lists each state's queue and moves its share of it one step."""

    def __init__(self, *args, index: int, of: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.index, self.of = index, of

    def run(self) -> None:
        try:
            while time.monotonic() < self.stop_at:
                moved = 0
                for state in NEXT:
                    page = self.call("list", "GET", f"/api/v1/referrals?status={state}"
                                     "&per_page=50")
                    if page is None or page.status_code != 200:
                        continue
                    for item in page.json()["items"]:
                        if item["id"] % self.of == self.index and self._move(item):
                            moved += 1
                        if time.monotonic() >= self.stop_at:
                            return
                if not moved:
                    time.sleep(0.5)
        finally:
            self.finish()

    def _move(self, item: dict) -> bool:
        state = item["status"]
        to = NEXT[state]
        body = {"to": to, "expected_version": item["version"], "note": "soak"}
        if state == "under_review" and item["id"] % 4 == 0:
            body.update(to="declined", reason_code="credit_policy")
        response = self.call("transition", "POST", f"/api/v1/referrals/{item['id']}/transitions",
                             body=body, key=str(uuid.uuid4()))
        if response is None or response.status_code != 200:
            return False
        with self.record.lock:
            self.record.transitions.append({"id": item["id"], "from": state, "to": body["to"],
                                            "replayed": response.headers.get(
                                                "Idempotent-Replayed") == "true"})
        return True
