"""Credentials out of URLs and out of any text that may have echoed them.

A URL can carry secrets in its user info (`s3://KEY:SECRET@bucket`, `postgresql://u:pw@h/db`)
and in its query string (`?password=...`, `?sslpassword=...`, `?sig=...`). `redact_url` drops
the password and masks every query parameter whose name says it holds a secret; `url_secrets`
lists the secret values so that `scrub` can mask them in error texts, tracebacks and logs
(drivers and fsspec backends quote URLs in their messages).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "***"
# a query parameter whose (lower-cased) name contains one of these holds a secret
SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "key", "credential", "signature", "auth")
SECRET_NAMES = frozenset({"sig", "pass", "pw"})  # exact names too short to match as parts


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or option of this name holds a credential.

    >>> is_secret_name("sslpassword"), is_secret_name("X-Amz-Security-Token"), is_secret_name("sslmode")
    (True, True, False)
    """
    low = name.lower()
    return low in SECRET_NAMES or any(w in low for w in SECRET_WORDS)


def _split_userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    if "@" not in netloc:
        return None, None, netloc
    userinfo, host = netloc.rsplit("@", 1)
    user, sep, password = userinfo.partition(":")
    return user, (password if sep else None), host


def redact_url(url: str) -> str:
    """The URL without its password (dropped, not masked) and with every secret-bearing query
    parameter's value masked; the user name, host, path and other parameters stay.

    >>> redact_url("postgresql+psycopg://me:pw@db:5432/x?sslmode=require&password=pw2")
    'postgresql+psycopg://me@db:5432/x?sslmode=require&password=***'
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:  # not a URL at all: hide anything between '//user:' and '@'
        return re.sub(r"(//[^:/@]*):[^@]*@", r"\1@", text)
    user, password, host = _split_userinfo(parts.netloc)
    out = text
    if password is not None:  # edit the text in place: urlunsplit would rewrite `sqlite:///x`
        out = out.replace(parts.netloc, f"{user}@{host}" if user else host, 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            query = "&".join(f"{quote(k, safe='')}={MASK if is_secret_name(k) else quote(v, safe='')}" for k, v in pairs)
            out = out.replace("?" + parts.query, "?" + query, 1)
    return out


def url_secrets(url: str) -> list[str]:
    """The secret values a URL holds (its password, secret query values), as written and
    percent-decoded: what `scrub` must mask wherever they were echoed."""
    text = str(url)
    found: list[str] = []
    try:
        parts = urlsplit(text)
    except ValueError:
        m = re.search(r"//[^:/@]*:([^@]*)@", text)
        return [m.group(1)] if m and m.group(1) else []
    _, password, _ = _split_userinfo(parts.netloc)
    if password:
        found.append(password)
    for raw in parts.query.split("&") if parts.query else []:
        name, _, value = raw.partition("=")
        if value and is_secret_name(unquote(name)):
            found.append(value)
    return sorted({v for s in found for v in (s, unquote(s), unquote(s.replace("+", " "))) if v}, key=len, reverse=True)


def option_secrets(options: object) -> list[str]:
    """String values of secret-named keys in (nested) storage options."""
    out: list[str] = []
    if isinstance(options, dict):
        for k, v in options.items():
            if isinstance(v, str) and v and is_secret_name(str(k)):
                out.append(v)
            elif isinstance(v, (dict, list)):
                out.extend(option_secrets(v))
    elif isinstance(options, list):
        for v in options:
            out.extend(option_secrets(v))
    return out


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret masked (longest first)."""
    for s in sorted(set(secrets), key=len, reverse=True):
        if s and s in text:
            text = text.replace(s, MASK)
    return text


def scrub_obj(obj: object, secrets: list[str]) -> object:
    """Every string inside a JSON-like value scrubbed (a protocol message before it goes out)."""
    if not secrets:
        return obj
    if isinstance(obj, str):
        return scrub(obj, secrets)
    if isinstance(obj, dict):
        return {k: scrub_obj(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub_obj(v, secrets) for v in obj]
    return obj


class ScrubFilter(logging.Filter):
    """A logging filter that masks known secrets in each record's text (and traceback)."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            if record.exc_info:
                import traceback

                msg = msg + "\n" + "".join(traceback.format_exception(*record.exc_info))
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = scrub(msg, self.secrets), None
        return True


def protect_logs(secrets: Iterable[str]) -> None:
    """Mask these secrets in everything the root logger's handlers write (stderr)."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return
    for h in logging.getLogger().handlers:
        f = next((f for f in h.filters if isinstance(f, ScrubFilter)), None)
        if f is None:
            h.addFilter(ScrubFilter(secrets))
        else:
            f.secrets = sorted(set(f.secrets) | set(secrets), key=len, reverse=True)
