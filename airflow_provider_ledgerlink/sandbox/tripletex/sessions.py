"""Sessions and tokens: ``PUT /token/session/:create`` (consumer and employee token in the query),
HTTP Basic ``<company id or 0>:<session token>`` on every other call, session expiry at Oslo midnight,
``>whoAmI``, ``DELETE /token/session/{token}``, the companies the employee may log in to, and the
rate limit per consumer and employee token (``X-Rate-Limit-*`` headers, 429).
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from airflow_provider_ledgerlink.sandbox.server import Handler, Request, Response, Router
from airflow_provider_ledgerlink.sandbox.tripletex.data import CLIENT_COMPANY_IDS, EMPLOYEE_ID, make_token
from airflow_provider_ledgerlink.sandbox.tripletex.errors import ApiError, invalid, not_found
from airflow_provider_ledgerlink.sandbox.tripletex.model import URL_BASE, object_ref
from airflow_provider_ledgerlink.sandbox.tripletex.query import AddRoute, TripletexQuery, parse_fields
from airflow_provider_ledgerlink.sandbox.tripletex.values import OSLO

__all__ = ["RateLimitSettings", "Session", "SessionHandlers"]


DEFAULT_RATE_LIMIT = 1_000
DEFAULT_RATE_PERIOD = 60


@dataclass
class Session:
    token: str
    ident: int
    consumer: str
    employee: str
    expiration: date
    requests: int = 0
    revoked: bool = False


@dataclass
class RateWindow:
    started: float
    used: int = 0


@dataclass
class RateLimitSettings:
    limit: int = DEFAULT_RATE_LIMIT
    period: float = DEFAULT_RATE_PERIOD
    omit_reset_on_429: bool = False


class SessionHandlers(TripletexQuery):
    """Session lifecycle, authentication of every other call, and the rate limit.

    ``consumer_token`` and ``employee_token`` are the valid tokens; ``rate_limit`` the live limit
    settings; ``session_max_requests`` (``None``: unlimited) ends every session after that many
    authenticated calls; ``session_now`` (``None``: the real clock) is the instant session expiry is
    judged at, settable to test the Oslo-midnight trap.
    """

    consumer_token: str
    employee_token: str

    def _reset_sessions(self) -> None:
        """Forget sessions, revoked employee tokens and rate-limit periods; default limit and policy."""
        with self._lock:
            self.rate_limit = RateLimitSettings()
            self.session_max_requests: int | None = None
            self.session_now: datetime | None = None
            self._sessions: dict[str, Session] = {}
            self._revoked_employee_tokens: set[str] = set()
            self._rate: dict[tuple[str, str], RateWindow] = {}

    def _add_session_routes(self, router: Router) -> None:
        """Creating a session needs none; everything else here needs a valid one."""
        router.add("PUT", r"/token/session/:create", self._create_session)
        add = self._authenticated(router)
        add("GET", r"/token/session/>whoami", self._who_am_i)
        add("DELETE", r"/token/session/(?P<token>[^/]+)", self._delete_session)
        add("GET", r"/company/>withloginaccess", self._login_access)
        add("GET", r"/employee/(?P<ident>\d+)", self._get_one("employee"))
        add("GET", r"/company/(?P<ident>\d+)", self._get_one("company"))

    def _authenticated(self, router: Router) -> AddRoute:
        """Registers routes whose handlers run only for a valid session within the rate limit."""

        def add(method: str, pattern: str, handler: Handler) -> None:
            router.add(method, pattern, self._auth(handler))

        return add

    def _auth(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def guarded(request: Request, **kwargs: str) -> Response:
            session, company = self._authenticate(request)
            self._count_request(request, session.consumer, session.employee)
            request.session = session  # type: ignore[attr-defined]
            request.company_id = company  # type: ignore[attr-defined]
            return handler(request, **kwargs)

        return guarded

    def _authenticate(self, request: Request) -> tuple[Session, int]:
        header = request.header("authorization") or ""
        scheme, _, value = header.strip().partition(" ")
        unauthorized = ApiError(
            401,
            3000,
            "Ikke innlogget.",
            developer="Authentication failed: missing, unknown or expired session token",
        )
        if scheme.lower() != "basic" or not value:
            raise unauthorized
        try:
            user, sep, token = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise unauthorized from None
        if not sep:
            raise unauthorized
        with self._lock:
            session = self._sessions.get(token)
            if session is None or session.revoked or session.employee in self._revoked_employee_tokens:
                raise unauthorized
            expires = datetime.combine(session.expiration, datetime.min.time(), tzinfo=OSLO)
            if self._session_clock() >= expires:
                raise unauthorized
            limit = self.session_max_requests
            if limit is not None and session.requests >= limit:
                raise unauthorized
            session.requests += 1
        user = user.strip()
        if user in ("", "0"):
            return session, self.company_id
        if not user.isdigit():
            raise unauthorized
        company = int(user)
        if company != self.company_id and company not in CLIENT_COMPANY_IDS:
            raise ApiError(
                403,
                9000,
                "Du har ikke tilgang til denne funksjonen.",
                developer=f"No login access to company {company}",
            )
        return session, company

    def _count_request(self, request: Request, consumer: str, employee: str) -> None:
        settings = self.rate_limit
        now = time.monotonic()
        with self._lock:
            key = (consumer, employee)
            window = self._rate.get(key)
            if window is None or now - window.started >= settings.period:
                window = self._rate[key] = RateWindow(now)
            reset = max(0, round(window.started + settings.period - now + 0.4999))
            if window.used >= settings.limit:
                self.counters.rate_limited += 1
                headers = {"X-Rate-Limit-Limit": str(settings.limit), "X-Rate-Limit-Remaining": "0"}
                if not settings.omit_reset_on_429:
                    headers["X-Rate-Limit-Reset"] = str(reset)
                raise ApiError(
                    429, 429, "For mange forespørsler.", developer="Rate limit exceeded", headers=headers
                )
            window.used += 1
            remaining = settings.limit - window.used
            low = self.counters.min_remaining
            self.counters.min_remaining = remaining if low is None else min(low, remaining)
        request.rate_headers.update(  # type: ignore[attr-defined]
            {
                "X-Rate-Limit-Limit": str(settings.limit),
                "X-Rate-Limit-Remaining": str(remaining),
                "X-Rate-Limit-Reset": str(reset),
            }
        )

    def _session_clock(self) -> datetime:
        return self.session_now or datetime.now(timezone.utc)

    # -- sessions ----------------------------------------------------------------------------------
    def _create_session(self, request: Request) -> Response:
        consumer = request.param("consumerToken")
        employee = request.param("employeeToken")
        expiration_text = request.param("expirationDate")
        missing = [
            (f"arg:{name}", "Kan ikke være null.")
            for name, value in (
                ("consumerToken", consumer),
                ("employeeToken", employee),
                ("expirationDate", expiration_text),
            )
            if not value
        ]
        if missing:
            raise ApiError(422, 18000, "Validering feilet.", validation=missing)
        assert consumer and employee and expiration_text
        if consumer != self.consumer_token:
            raise invalid("arg:consumerToken", "The consumer token is invalid or does not exist.")
        if employee != self.employee_token or employee in self._revoked_employee_tokens:
            raise invalid("arg:employeeToken", "The employee token is invalid or does not exist.")
        try:
            expiration = date.fromisoformat(expiration_text.strip()[:10])
        except ValueError:
            raise invalid("arg:expirationDate", f"Ugyldig dato: {expiration_text}") from None
        self._count_request(request, consumer, employee)
        with self._lock:
            ident = self._new_id()
            token = make_token(self.seed, f"session:{ident}:{uuid.uuid4().hex}")
            self._sessions[token] = Session(token, ident, consumer, employee, expiration)
            self.counters.sessions_created += 1
        value = {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/token/session/{ident}",
            "consumerToken": {"id": 501, "url": f"{URL_BASE}/token/consumer/501"},
            "employeeToken": {"id": 502, "url": f"{URL_BASE}/token/employee/502"},
            "expirationDate": expiration.isoformat(),
            "token": token,
        }
        return Response.json({"value": value})

    def _who_am_i(self, request: Request) -> Response:
        company = request.company_id  # type: ignore[attr-defined]
        value = {
            "employeeId": EMPLOYEE_ID,
            "actualEmployeeId": EMPLOYEE_ID,
            "employee": object_ref("employee", EMPLOYEE_ID),
            "companyId": company,
            "company": object_ref("company", company),
            "language": "no",
            "loggedInWithConnect": False,
            "employeeIsProxy": company != self.company_id,
        }
        tree = parse_fields(request.param("fields"))
        return Response.json({"value": self._project("whoAmI", value, tree)})

    def _delete_session(self, request: Request, token: str) -> Response:
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                raise not_found("session token", "?")
            session.revoked = True
        return Response.empty(204, None)

    def _login_access(self, request: Request) -> Response:
        companies = [self._object("client", ident) for ident in (self.company_id, *CLIENT_COMPANY_IDS)]
        return self._list_response(request, "client", [c for c in companies if c is not None])

    # -- sandbox control ---------------------------------------------------------------------------
    def configure_rate_limit(
        self, limit: int | None = None, period: float | None = None, omit_reset_on_429: bool | None = None
    ) -> None:
        """Change the rate limit; the current periods, and the 429 and lowest-remaining counters,
        start again."""
        with self._lock:
            if limit is not None:
                if int(limit) < 1:
                    raise ValueError("limit must be at least 1")
                self.rate_limit.limit = int(limit)
            if period is not None:
                if float(period) <= 0:
                    raise ValueError("period must be positive")
                self.rate_limit.period = float(period)
            if omit_reset_on_429 is not None:
                self.rate_limit.omit_reset_on_429 = bool(omit_reset_on_429)
            self._rate.clear()
            self.counters.rate_limited = 0
            self.counters.min_remaining = None

    def expire_sessions(self) -> int:
        """End every session now, as if they all reached their expiration date."""
        with self._lock:
            live = [s for s in self._sessions.values() if not s.revoked]
            for session in live:
                session.revoked = True
            return len(live)

    def revoke_employee_token(self, token: str | None = None) -> None:
        with self._lock:
            self._revoked_employee_tokens.add(token or self.employee_token)
