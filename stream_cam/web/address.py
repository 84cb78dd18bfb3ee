"""Where the browser view listens: ``[HOST:]PORT`` parsing, the token rule, and binding.

Binds 127.0.0.1 unless a host is given. Off loopback a token is required.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def parse_address(text: str) -> Address:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; the host defaults to 127.0.0.1."""
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise InputError(f"--serve {text!r}: expected PORT or HOST:PORT, e.g. 8080 or 0.0.0.0:8080") from None
    if not 1 <= port <= 65535:
        raise InputError(f"--serve: port {port} is out of range 1-65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise InputError(f"--serve: {host!r} is not an IP address (use e.g. 127.0.0.1 or 0.0.0.0)") from None
    return Address(host, port)


def check_token(address: Address, token: str | None) -> None:
    if not address.loopback and not token:
        raise InputError(f"--serve {address.host}:{address.port} is reachable from other machines: "
                         "give --token SECRET (viewers add ?token=SECRET), or bind 127.0.0.1")


def bind(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE on Linux / macOS
            raise InputError(f"--serve: port {address.port} is already in use; pick another port") from exc
        raise InputError(f"--serve: cannot listen on {address.host}:{address.port}: {exc.strerror}") from exc
    sock.listen(64)
    return sock


def probe_port(address: Address) -> None:
    """Fail early with a clear message if ``address`` cannot be listened on."""
    bind(address).close()
