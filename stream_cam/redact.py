"""Secrets in source addresses never reach a screen, log, frame or response.

``redact("rtsp://admin:hunter2@cam/stream?token=abc")`` -> ``"rtsp://admin:***@cam/stream?token=***"``.
Everything shown or logged about a source goes through :func:`redact`; only the code that opens
the source sees the address as given.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

MASK = "***"


def redact(spec: str) -> str:
    """A source address with its password and every query value masked; other strings unchanged."""
    text = str(spec)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return text.split("://", 1)[0] + "://" + MASK  # not a URL we can take apart: show nothing of it
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.username is not None or parts.password is not None:
        user = parts.username or ""
        netloc = (f"{user}:{MASK}@" if parts.password is not None else f"{user}@") + netloc
    # name=value keeps the name; a bare piece ("?abc123") may itself be the secret, so it goes.
    query = "&".join(f"{piece.split('=', 1)[0]}={MASK}" if "=" in piece else MASK
                     for piece in parts.query.split("&") if piece)
    return urlunsplit((parts.scheme, netloc, parts.path, query, MASK if parts.fragment else ""))
