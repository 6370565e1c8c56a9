"""Keeping secrets out of logs, exceptions, trigger events, XCom and URLs — in every encoding.

A secret rarely leaks as itself. A vendor that echoes a request quotes it the way it travelled:
URL-encoded in a query string (Tripletex's ``consumerToken=…``, CloudPOS's ``token=…``), XML-escaped
in a SOAP fault (a CASH password with ``&`` or ``<``), JSON-escaped in an error body, or inside a
base64 ``Authorization`` header (AFAS's ``AfasToken …``, Tripletex's ``Basic 0:<session>``).
:func:`register_secret` therefore records each secret once and this module recognises it in all of
those forms:

* our scrubber (:func:`scrub`) matches a pattern built per secret in which every character may appear
  as itself, percent-encoded (either case of hex, ``+`` for a space), as an XML/HTML character
  reference or named entity, or JSON-escaped — in any mixture, so whichever characters an encoder
  chose to escape, the secret is found; and base64 (standard and URL-safe alphabets) at each of the
  three alignments a secret can have inside a longer encoded value, so ``base64("0:" + token)`` is
  caught by registering ``token`` alone;
* Airflow's secrets masker (``mask_secret``), which matches literal strings, is given the value and
  its common encoded forms, so task logs are masked even for lines LedgerLink did not write.

Exception messages and URLs that LedgerLink builds are scrubbed before they exist;
:func:`scrub_exception` cleans a whole exception chain (``__cause__`` and ``__context__``) raised by
a library, and :func:`scrub_value` cleans nested JSON-like data (trigger event payloads, XCom).
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import threading
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

REDACTED = "***"

# Query parameters that carry credentials in some vendor's API (CloudPOS puts its token there).
SECRET_QUERY_PARAMS = frozenset(
    {"token", "password", "apikey", "api_key", "apitoken", "secret", "otp", "consumertoken", "employeetoken"}
)

# Shorter strings would redact ordinary words and numbers.
_MIN_SECRET_LENGTH = 4
# A base64 fragment shorter than this is too likely to occur by chance in other base64 text.
_MIN_BASE64_FRAGMENT = 6

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

_T = TypeVar("_T")


def register_secret(value: str | None, *, airflow_mask: bool = True) -> None:
    """Remember ``value`` as secret, with its encoded forms, for :func:`scrub` and Airflow's masker.

    :param airflow_mask: also tell Airflow's secrets masker (task logs). Pass ``False`` where that
        call must not be made (code running on a triggerer's event loop).
    """
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    global _pattern
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _pattern = None  # rebuilt on next use
    if airflow_mask:
        _mask_in_airflow(value)


def register_basic_auth(user: str | None, password: str | None, *, airflow_mask: bool = True) -> None:
    """Register an HTTP Basic credential: the password, and ``user:password`` as the header carries it."""
    register_secret(password, airflow_mask=airflow_mask)
    if password:
        register_secret(f"{user or ''}:{password}", airflow_mask=airflow_mask)


def encoded_forms(value: str) -> list[str]:
    """The literal forms of ``value`` most likely to appear in text: itself, URL-, XML- and
    JSON-encoded, and base64 (whole, and the fragments that survive any alignment)."""
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        html.escape(value, quote=True),
        html.escape(value, quote=False),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        repr(value.encode("utf-8"))[2:-1],
    }
    forms.update(_base64_fragments(value))
    return sorted(form for form in forms if form)


def _base64_fragments(value: str) -> set[str]:
    """Base64 text that encodes ``value`` wherever it starts inside a longer byte string.

    Base64 maps 3 bytes to 4 characters, so the same bytes encode differently depending on their
    offset modulo 3. For each offset, the characters that depend only on the secret's own bytes are
    the same whatever comes before or after; those are the fragments to look for.
    """
    raw = value.encode("utf-8")
    fragments: set[str] = set()
    for offset in range(3):
        padded = bytes(offset) + raw
        first = -(-offset * 8 // 6)  # ceil: the first character made of the secret's bits only
        last = len(padded) * 8 // 6  # floor: characters after this mix in whatever follows
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            fragment = encode(padded).decode("ascii")[first:last]
            if len(fragment) >= _MIN_BASE64_FRAGMENT:
                fragments.add(fragment)
    return fragments


def _char_alternatives(char: str) -> str:
    """A regex matching ``char`` as itself or in any encoding an echoing server might use."""
    code = ord(char)
    options = [re.escape(char)]
    options.append("".join(f"(?i:%{byte:02x})" for byte in char.encode("utf-8")))
    if char == " ":
        options.append(r"\+")
    options.append(f"&#0*{code};")
    options.append(f"&#[xX]0*(?i:{code:x});")
    entity = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}.get(char)
    if entity:
        options.append(f"&{entity};")
    escaped = json.dumps(char)[1:-1]
    if escaped != char:
        options.append(re.escape(escaped))
    # Python's repr, as in httpcore's DEBUG lines that print headers as bytes (b'Bearer a\'b'):
    # str repr escapes a quote and a backslash; bytes repr writes every non-ASCII byte as \xNN.
    if char in "'\\":
        options.append(re.escape("\\" + char))
    if code > 0x7E or code < 0x20:
        options.append("".join(f"\\\\x(?i:{byte:02x})" for byte in char.encode("utf-8")))
        if code <= 0xFF:
            options.append(f"\\\\x(?i:{code:02x})")
    if code <= 0xFFFF:
        options.append(f"\\\\u(?i:{code:04x})")
    if char == "/":
        options.append(r"\\/")
    return "(?:" + "|".join(dict.fromkeys(options)) + ")"


def _secret_pattern(value: str) -> str:
    return "".join(_char_alternatives(char) for char in value)


def _compiled() -> re.Pattern[str] | None:
    global _pattern
    pattern = _pattern
    if pattern is not None or not _secrets:
        return pattern
    with _lock:
        if _pattern is None and _secrets:
            secrets = sorted(_secrets, key=len, reverse=True)
            alternatives = [_secret_pattern(secret) for secret in secrets]
            fragments = {fragment for secret in secrets for fragment in _base64_fragments(secret)}
            alternatives += [re.escape(f) for f in sorted(fragments, key=len, reverse=True)]
            _pattern = re.compile("|".join(alternatives))
        return _pattern


def _mask_in_airflow(value: str) -> None:
    try:
        from airflow_provider_ledgerlink.core.compat import mask_secret
    except Exception:  # pragma: no cover - Airflow is a dependency
        return
    for form in encoded_forms(value):
        try:
            mask_secret(form)
        except Exception:  # outside a task (tests, the sandbox) there may be no masker to tell
            return


def scrub(text: str | None) -> str:
    """Return ``text`` with every registered secret, in any encoding, replaced by ``***``."""
    if not text:
        return text or ""
    pattern = _compiled()
    if pattern is None:
        return text
    return pattern.sub(REDACTED, text)


def scrub_value(value: _T) -> _T:
    """``value`` with every string inside it scrubbed (dicts, lists and tuples are copied)."""
    if isinstance(value, str):
        return scrub(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {scrub_value(k): scrub_value(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(item) for item in value)  # type: ignore[return-value]
    return value


def scrub_exception(exc: BaseException) -> BaseException:
    """Scrub the arguments (hence the message) of ``exc`` and of every exception chained to it.

    Changes the exceptions in place and returns ``exc``, so ``raise scrub_exception(e)`` works.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        with contextlib.suppress(Exception):  # an exception type with read-only args keeps them
            current.args = tuple(scrub_value(arg) for arg in current.args)
        for name in ("message", "msg", "detail", "text"):
            attribute = getattr(current, name, None)
            if isinstance(attribute, str):
                with contextlib.suppress(Exception):
                    setattr(current, name, scrub(attribute))
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            current.__notes__ = [scrub(note) if isinstance(note, str) else note for note in notes]
        pending.extend((current.__cause__, current.__context__))
    return exc


def known_secrets() -> Iterable[str]:
    """A snapshot of the registered secrets (for leak checks in tests; never log it)."""
    with _lock:
        return tuple(_secrets)


def redact_url(url: str) -> str:
    """A URL safe to log: credentials in the user-info part and in secret query parameters hidden."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return scrub(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        query = "&".join(_redact_query_item(item) for item in query.split("&"))
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def _redact_query_item(item: str) -> str:
    # Works on the raw text so bare flags such as CloudPOS's ``&get-products`` keep their form.
    key, sep, _value = item.partition("=")
    if sep and unquote_plus(key).lower() in SECRET_QUERY_PARAMS:
        return f"{key}={REDACTED}"
    return item
