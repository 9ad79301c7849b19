"""The keys of an ``outputs.NAME: {type: mqtt, ...}`` section."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field

__all__ = ["MqttConfig", "MQTT_KEYS", "topic_part"]


def topic_part(name: str) -> str:
    """A camera name as one MQTT topic level (no '/', '+', '#')."""
    return re.sub(r"[/+#\s]", "_", name) or "_"


@dataclass(frozen=True)
class MqttConfig:
    host: str = field(default="127.0.0.1", metadata={"help": "broker host"})
    port: int = field(default=1883, metadata={"ge": 1, "le": 65535})
    username: str | None = None
    password: str | None = field(default=None, metadata={"help": "never logged"})
    tls: bool = field(default=False, metadata={"help": "TLS with the system's CAs"})
    ca_file: str | None = field(default=None, metadata={"help": "TLS: a CA bundle instead"})
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

    def __repr__(self) -> str:  # the password never reaches a log line
        return (f"MqttConfig(host={self.host!r}, port={self.port}, username={self.username!r},"
                f" password={'***' if self.password else None}, tls={self.tls}, "
                f"topic_prefix={self.topic_prefix!r}, qos={self.qos})")


MQTT_KEYS = tuple(f for f in MqttConfig.__dataclass_fields__)
