"""Masking secrets inside free text: URLs with credentials, tokens, registered values.

Notification URLs (apprise) embed tokens and passwords in the URL itself, so
masking by key name (``password=...``) is not enough: any string that reaches
a log line, a stored error or a printed table goes through :func:`redact_text`.

Known secret values are kept in a process-wide registry, like the logging
configuration they protect: a channel URL registered once is masked in every
later log line of the process, whichever thread writes it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

MASK = "****"
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words
_USERINFO = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@/\s]+)@")
# A query parameter name is word characters and dashes: a looser name would match
# minified JavaScript (``a&&s.call(r)}}t.Signal=l,...`` in Bokeh's inline JS), and a value
# stops at a backslash so a masked JSON string stays valid JSON (archived notebooks).
_QUERY = re.compile(
    r"(?P<pre>[?&][\w-]*(?:token|secret|pass|key|auth|sig)[\w-]*=)(?P<v>[^&\s#'\"\\]+)", re.I)


class SecretRegistry:
    """A thread-safe set of secret strings masked by :meth:`redact`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()

    def add(self, value: str | None) -> None:
        """Remember ``value`` as a secret (ignored when empty or very short)."""
        if not value or len(value) < _MIN_SECRET:
            return
        # Also as it appears inside JSON (a notebook's archived outputs, JSON logs).
        forms = {value, json.dumps(value)[1:-1]}
        with self._lock:
            new = forms.difference(self._values)
            if new:
                # Longest first, so a whole URL is masked before its parts.
                self._values = tuple(sorted((*self._values, *new), key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` with every registered value, URL password and token query value masked."""
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        if "://" in text:
            text = _USERINFO.sub(lambda m: f"{m['pre']}{MASK}@", text)
        if "=" in text:
            text = _QUERY.sub(lambda m: f"{m['pre']}{MASK}", text)
        return text


SECRETS = SecretRegistry()


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in later logs and redacted text."""
    SECRETS.add(value)


def register_url(url: str) -> None:
    """Register a notification URL and its credential parts as secrets."""
    SECRETS.add(url)
    _, sep, rest = url.partition("://")
    if not sep:
        return
    rest = rest.split("?", 1)[0]
    userinfo, at, host_path = rest.rpartition("@")
    if at and ":" in userinfo:
        SECRETS.add(userinfo.split(":", 1)[1])
    # Path segments of services like tgram://TOKEN/CHAT or discord://ID/TOKEN
    # are tokens; long opaque segments are masked (short ones are names).
    for part in (host_path if at else rest).split("/")[1:]:
        if len(part) >= 16:
            SECRETS.add(part)


def register_settings(settings: Any) -> None:
    """Register every secret of a settings model: ``SecretStr`` values, secret-named
    fields and the passwords of ``*url`` fields (database, Redis), at any depth."""
    from pydantic import BaseModel, SecretStr

    from tradelab.config import is_secret_name

    def walk(value: Any, name: str) -> None:
        if isinstance(value, SecretStr):
            SECRETS.add(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for field in type(value).model_fields:
                walk(getattr(value, field), field)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, str):
            if is_secret_name(name):
                SECRETS.add(value)
            elif name.endswith("url") and "://" in value:
                userinfo = value.partition("://")[2].split("/", 1)[0].rpartition("@")[0]
                SECRETS.add(userinfo.partition(":")[2] or None)

    walk(settings, "")


def register_environment(environ: Any) -> None:
    """Register the values of secret-named variables (``*_TOKEN``, ``*PASSWORD*``...).

    A notebook job inherits its runner's environment; whatever it prints from
    there is masked in the run's archived output.
    """
    from tradelab.config import is_secret_name

    for name, value in environ.items():
        # Only values long enough to be credentials: a flag like PIP_NO_PASSWORD=true
        # must not turn every "true" in an archived notebook into a mask.
        if is_secret_name(name) and len(value) >= 8:
            SECRETS.add(value)


def redact_file(path: Any) -> bool:
    """Rewrite a text file with every secret masked; whether anything changed."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        return False
    text = p.read_text(encoding="utf-8", errors="replace")
    clean = redact_text(text)
    if clean != text:
        p.write_text(clean, encoding="utf-8")
    return clean != text


def redact_text(text: str) -> str:
    """Mask registered secrets, URL passwords and token-like query values in ``text``."""
    return SECRETS.redact(text)


def redact_value(value: Any) -> Any:
    """:func:`redact_text` applied inside strings, lists, tuples and dicts."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def mask_url(url: str) -> str:
    """A printable form of a notification URL: apprise's privacy rendering, else generic masking."""
    try:
        import apprise

        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin:
            return str(plugin.url(privacy=True))
    except Exception:  # an unparsable URL falls back to the generic mask
        pass
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


class RedactingFilter(logging.Filter):
    """A stdlib logging filter masking secrets in records (third-party loggers like apprise)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg, record.args = redact_text(message), None
        return True


_FILTERED: set[str] = set()


def protect_logger(name: str) -> None:
    """Attach a :class:`RedactingFilter` to the stdlib logger ``name`` (once)."""
    if name not in _FILTERED:
        logging.getLogger(name).addFilter(RedactingFilter())
        _FILTERED.add(name)
