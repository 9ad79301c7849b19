"""The keys of an ``outputs.NAME: {type: mqtt, ...}`` section."""

from __future__ import annotations

import os
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MqttConfig", "MqttTls", "MQTT_KEYS", "topic_part", "report_connect_errors"]


def topic_part(name: str) -> str:
    """A camera name as one MQTT topic level (no '/', '+', '#')."""
    return re.sub(r"[/+#\s]", "_", name) or "_"


@dataclass(frozen=True)
class MqttTls:
    """``tls: {ca_certs: ..., certfile: ..., keyfile: ...}``: TLS with a private CA and/or a
    client certificate (``tls: true`` is TLS with the system's CAs)."""

    ca_certs: str | None = field(default=None, metadata={
        "help": "PEM bundle of the CA(s) that signed the broker's certificate"})
    certfile: str | None = field(default=None, metadata={"help": "client certificate (PEM)"})
    keyfile: str | None = field(default=None, metadata={"help": "its private key (PEM)"})

    def __post_init__(self) -> None:
        if self.keyfile and not self.certfile:
            raise ValueError("tls.keyfile needs tls.certfile (the client certificate)")
        _check_tls(self.ca_certs, self.certfile, self.keyfile)


def _check_tls(ca_certs: str | None, certfile: str | None, keyfile: str | None) -> None:
    """Load the files now, so a wrong path or a file that is not PEM is a config error naming
    the key, not a failure on the connecting thread."""
    for key, path in (("ca_certs", ca_certs), ("certfile", certfile), ("keyfile", keyfile)):
        if path is not None and not os.path.isfile(path):
            raise ValueError(f"tls.{key}: no such file: {path}")
    ctx = ssl.create_default_context()
    if ca_certs:
        try:
            ctx.load_verify_locations(cafile=ca_certs)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"tls.ca_certs: {ca_certs} is not a PEM CA bundle "
                             f"({exc.__class__.__name__})") from None
    if certfile:
        try:
            ctx.load_cert_chain(certfile, keyfile)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"tls.certfile/keyfile: {certfile} with "
                             f"{keyfile or 'its own key'} is not a PEM certificate and its "
                             f"key ({exc.__class__.__name__})") from None


@dataclass(frozen=True)
class MqttConfig:
    host: str = field(default="127.0.0.1", metadata={"help": "broker host"})
    port: int = field(default=1883, metadata={"ge": 1, "le": 65535})
    username: str | None = None
    password: str | None = field(default=None, metadata={"help": "never logged"})
    tls: bool | MqttTls = field(default=False, metadata={
        "help": "true: TLS with the system's CAs; {ca_certs, certfile, keyfile}: a private "
                "CA and/or a client certificate"})
    ca_file: str | None = field(default=None, metadata={
        "help": "TLS with this CA bundle (the same as tls: {ca_certs: ...})"})
    topic_prefix: str = "platestream"
    qos: int = field(default=1, metadata={"ge": 0, "le": 2})
    retain: bool = field(default=False, metadata={"help": "retain {prefix}/events messages"})
    discovery: bool = field(default=True, metadata={"help": "Home Assistant MQTT discovery"})
    discovery_prefix: str = "homeassistant"
    reset_after: float = field(default=10.0, metadata={
        "ge": 0, "help": "seconds before {prefix}/{camera}/known is emptied again (0: never)"})
    node_id: str = field(default_factory=lambda: topic_part(socket.gethostname()), metadata={
        "help": "this platestream node in client id and Home Assistant device"})
    client_id: str | None = field(default=None, metadata={
        "help": "MQTT client id (default platestream-NODE-OUTPUT; unique per broker)"})
    keepalive: int = field(default=30, metadata={"ge": 5, "le": 3600})
    heartbeat: float = field(default=30.0, metadata={
        "ge": 0, "le": 3600, "help": "seconds between this node's retained status on "
                                    "{prefix}/nodes/{node_id}/status (0: off)"})
    publish_timeout: float = field(default=10.0, metadata={"gt": 0})

    def __post_init__(self) -> None:
        if not self.topic_prefix or any(c in self.topic_prefix for c in "+#") \
                or self.topic_prefix.startswith("/") or self.topic_prefix.endswith("/"):
            raise ValueError(f"topic_prefix: expected e.g. 'platestream', got "
                             f"{self.topic_prefix!r}")
        object.__setattr__(self, "node_id", topic_part(self.node_id))
        if self.ca_file is not None:
            if isinstance(self.tls, MqttTls) and self.tls.ca_certs:
                raise ValueError("ca_file and tls.ca_certs: give the CA bundle once")
            _check_tls(self.ca_file, None, None)

    def tls_options(self) -> dict[str, str | None] | None:
        """paho's ``tls_set`` arguments, or None without TLS."""
        t = self.tls
        if isinstance(t, MqttTls):
            return {"ca_certs": t.ca_certs or self.ca_file, "certfile": t.certfile,
                    "keyfile": t.keyfile}
        if t or self.ca_file:
            return {"ca_certs": self.ca_file, "certfile": None, "keyfile": None}
        return None

    def apply(self, client: Any) -> None:
        """Credentials and TLS on a paho client (the mqtt output, the heartbeat, the hub)."""
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        opts = self.tls_options()
        if opts is not None:
            client.tls_set(**opts)  # the broker's certificate and host name are checked

    def __repr__(self) -> str:  # the password never reaches a log line
        return (f"MqttConfig(host={self.host!r}, port={self.port}, username={self.username!r},"
                f" password={'***' if self.password else None}, "
                f"tls={self.tls_options() is not None}, "
                f"topic_prefix={self.topic_prefix!r}, qos={self.qos})")


MQTT_KEYS = tuple(f for f in MqttConfig.__dataclass_fields__)


def report_connect_errors(client: Any, broker: str, on_error: Any) -> None:
    """Call ``on_error(message)`` when paho's network thread cannot (re)connect: paho retries
    and drops the reason (an ``on_connect_fail`` has no exception), so it is taken from its
    ``reconnect`` here. TLS problems (an unknown CA, a wrong host name) are named as such."""
    reconnect = client.reconnect

    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return reconnect(*args, **kwargs)
        except OSError as exc:
            on_error(describe_connect_error(broker, exc))
            raise

    client.reconnect = watched


def describe_connect_error(broker: str, exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS to {broker}: the broker's certificate was not accepted "
                f"({exc.verify_message or exc.reason}; check tls.ca_certs and the host name)")
    if isinstance(exc, ssl.SSLError):
        return f"TLS to {broker} failed: {exc.reason or exc} (does the port speak TLS?)"
    return f"cannot connect to {broker}: {exc.strerror or exc}"
