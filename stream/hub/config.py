"""The hub's YAML: ``mqtt``, ``store``, ``server``, ``known_plates`` (+ ``heartbeat``, ``group``).

```yaml
mqtt: {host: broker, port: 1883, username: hub, password: ..., tls: false,
       topic_prefix: platestream}
store: {url: postgresql://hub:pw@db/platestream}     # or SQLite: {path: events.sqlite}
server: {host: 0.0.0.0, port: 8080, token: null}
known_plates: {staff: {file: staff.csv}}
heartbeat: 30              # a node silent for 2 x its heartbeat is offline (this: when its
                           # status does not say its heartbeat)
group: null                # replicas: an MQTT 5 shared-subscription group splits the events
state_dir: .               # SQLite and event images (relative to this file)
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from stream.config import _known_plates
from stream.delivery.mqtt_config import MqttConfig
from stream.known_plates import KnownListConfig
from stream.store import StoreConfig
from stream.yamlconf import Node, build, check_keys, compose_file, fail

__all__ = ["HubConfig", "HubServer", "load_hub_config"]

_TOP = ("mqtt", "store", "server", "known_plates", "heartbeat", "group", "state_dir")


@dataclass(frozen=True)
class HubServer:
    host: str = "0.0.0.0"
    port: int = field(default=8080, metadata={"ge": 1, "le": 65535})
    token: str | None = field(default=None, metadata={"help": "Authorization: Token X"})


@dataclass(frozen=True)
class HubConfig:
    mqtt: MqttConfig
    store: StoreConfig = field(default_factory=StoreConfig)
    server: HubServer = field(default_factory=HubServer)
    known_plates: dict[str, KnownListConfig] = field(default_factory=dict)
    heartbeat: float = 30.0
    group: str | None = None  # None: one hub, a plain persistent subscription
    state_dir: Path = Path(".")
    source: str = ""


def load_hub_config(path: str | os.PathLike[str]) -> HubConfig:
    """Raises ConfigError naming the file line and key."""
    root = compose_file(Path(path))
    if not isinstance(root.value, dict):
        fail(root, (), "expected a mapping with 'mqtt:' at the top of the file")
    top: dict[str, Node] = root.value
    check_keys(top, list(_TOP), ())
    if "mqtt" not in top:
        fail(root, ("mqtt",), "the broker the nodes publish to is required (mqtt: {host: ...})")
    base = Path(path).resolve().parent
    heartbeat = 30.0
    if "heartbeat" in top:
        v = top["heartbeat"].value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1 <= v <= 3600:
            fail(top["heartbeat"], ("heartbeat",), f"expected seconds 1..3600, got {v!r}")
        heartbeat = float(v)
    group = None
    if "group" in top and top["group"].value is not None:
        group = str(top["group"].value)
        if not group or any(c in group for c in "/+#"):
            fail(top["group"], ("group",), f"expected a name without / + #, got {group!r}")
    state = base
    if "state_dir" in top:
        p = Path(str(top["state_dir"].value)).expanduser()
        state = p if p.is_absolute() else base / p
    return HubConfig(
        mqtt=build(MqttConfig, top["mqtt"], ("mqtt",)),
        store=build(StoreConfig, top["store"], ("store",)) if "store" in top else StoreConfig(),
        server=build(HubServer, top["server"], ("server",)) if "server" in top else HubServer(),
        known_plates=_known_plates(top.get("known_plates"), base),
        heartbeat=heartbeat, group=group, state_dir=state, source=str(path),
    )
