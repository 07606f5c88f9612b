"""Broker address, TLS files and topic names of the uplink (docs/design.md §3)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from wire.topics import (
    TopicError,
    check_level,
    config_topic,
    events_topic,
    occupancy_topic,
    receipts_topic,
    status_topic,
)


class UplinkConfigError(ValueError):
    """A broker URL or TLS setting the uplink cannot use."""


class TlsFiles(NamedTuple):
    """PEM files: the CA that signed the broker (``None``: the system's trust store), the device
    certificate and its key."""

    ca: Path | str | None
    cert: Path | str
    key: Path | str

    def context(self) -> ssl.SSLContext:
        """TLS 1.2+ client context that checks the broker's name and presents the device cert.

        Without a CA file the broker is verified against the system store (OpenSSL's default
        verify paths: ``/etc/ssl/certs`` on Debian, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``),
        the documented default of ``broker.ca`` (docs/configuration.md).
        """
        for name, value in zip(self._fields, self, strict=True):
            if value is None and name == "ca":
                continue
            if value is None or not Path(value).is_file():
                raise UplinkConfigError(f"TLS {name} file {value} does not exist")
        if self.ca is None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        else:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtts://host:port`` (TLS, default port 8883) or ``mqtt://host:port`` (1883)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise UplinkConfigError(f"broker URL must be mqtts://host:port or mqtt://host:port,"
                                    f" not {url!r}")
        if parts.username or parts.password or parts.path not in ("", "/"):
            raise UplinkConfigError("the broker URL carries no credentials or path: the device"
                                    " authenticates with its certificate")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise UplinkConfigError(f"bad port in broker URL {url!r}") from exc
        return cls(parts.hostname, port, tls)


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one device (no personal data in any of them)."""

    events: str
    status: str
    config: str
    occupancy: str
    receipts: str

    @classmethod
    def for_device(cls, device_id: str, site_id: str) -> Topics:
        try:
            check_level(device_id, "device_id")
            check_level(site_id, "site_id")
        except TopicError as exc:
            raise UplinkConfigError(exc.reason) from None
        return cls(events=events_topic(device_id),
                   status=status_topic(device_id),
                   config=config_topic(device_id),
                   occupancy=occupancy_topic(site_id),
                   receipts=receipts_topic(device_id))
