"""The stream config: typed frozen dataclasses loaded from YAML (``platestream run CONFIG``).

Keys follow Plate Recognizer Stream's (``sample``, ``regions``, ``mmc``, ``max_prediction_delay``,
``memory_decay``...). ``defaults:`` is merged into every camera before it is checked. Every
error names the file line and the key path, e.g.
``demo.yaml:7: cameras.gate.fsp: unknown key (did you mean 'fps'?)``.

Relative video paths (camera ``url`` that is not a URL or a device) are looked up in the data
directory the caller gives (the CLI: ``--data-dir``, else ``$PLATESTREAM_DATA``), then relative
to the working directory.
Relative output paths (``file``, ``dir``, ``spool``) are relative to ``output_dir``, which
defaults to the state directory (``stream.state``); the spool defaults to
``STATE/spool/CONFIG-NAME.sqlite``. Nothing goes to the working directory unless the config
names a relative ``output_dir``.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import socket
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine import ReadOptions, parse_regions
from engine.errors import EngineConfigError
from engine.settings import EngineSettings
from stream.delivery.mqtt_config import MQTT_KEYS, MqttConfig, topic_part
from stream.known_plates import KnownListConfig, KnownPlates, KnownPlatesError
from stream.redact import remember, scrub
from stream.server_settings import ServerSettings, WebhookTarget
from stream.sinks.paths import check_template
from stream.state import resolve_state_dir
from stream.store.config import StoreConfig
from stream.yamlconf import ConfigError, Node, build, check_keys, compose_file, fail

__all__ = [
    "ConfigError", "EngineSection", "ServerSettings", "WebhookTarget", "CameraConfig",
    "OutputConfig", "StreamConfig",
    "load_config", "load_server_section", "strip_credentials", "is_live_url",
]

_LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://",
                 "srt://")
ImageKind = Literal["vehicle", "plate", "original", "none"]


# The ``engine:`` section is the engine's own settings schema (flags and env fill it too).
EngineSection = EngineSettings


@dataclass(frozen=True)
class CameraConfig:
    """One camera or video file. Times are seconds."""

    name: str
    url: str
    active: bool = True
    sample: int = field(default=1, metadata={"ge": 1, "help": "analyse every Nth frame"})
    fps: float | None = field(default=None, metadata={"gt": 0, "help": "analyse at most fps"})
    regions: tuple[str, ...] = ()
    mmc: bool = False
    max_prediction_delay: float = field(default=6.0, metadata={"gt": 0})
    memory_decay: float = field(default=300.0, metadata={"ge": 0})
    zones: Any = field(default=(), metadata={"help": "polygon(s) in source pixels"})
    outputs: tuple[str, ...] = ()
    realtime: bool = field(default=True, metadata={"help": "files: read at real-time pace"})
    loop: bool = field(default=False, metadata={"help": "files: start again at the end"})
    analysis_width: int = field(default=1280, metadata={"ge": 160, "le": 7680})
    timeout: float = field(default=10.0, metadata={"gt": 0, "help": "open/read timeout"})
    reconnect_max: float = field(default=30.0, metadata={"gt": 0, "help": "backoff cap"})
    min_score: float = field(default=0.3, metadata={"ge": 0, "le": 1,
                                                    "help": "best read score for an event"})
    match_ratio: float = field(default=80.0, metadata={"ge": 0, "le": 100,
                                                       "help": "fuzzy % for 'same plate'"})
    motion: bool = field(default=True, metadata={"help": "skip frames where nothing moved"})
    motion_crop: bool = field(default=False, metadata={
        "help": "find plates only where the frame moved and around the plates last seen, at "
                "the frame's scale (a smaller detector input; a few % less CPU for 8 cameras, "
                "not fewer drops in every run); needs motion"})
    detect_interval: int | Literal["auto"] = field(default=0, metadata={
        "ge": 0, "le": 4, "help": "analysed frames after each whole-frame detection that are "
                                  "searched only around the plates of the frame before, or not "
                                  "at all where it had none (a new vehicle waits for the next "
                                  "whole frame; DeepStream's interval); 0: whole every time; "
                                  "auto: 0, and 1-2 while the camera drops frames (fewer drops, "
                                  "but more wrong reads than dropping them at 12 cameras)"})
    fast_decode: bool | Literal["auto"] = field(default="auto", metadata={
        "help": "H.264/HEVC: skip the deblocking filter (15-25 % less decoding CPU, blockier "
                "frames); auto: in full where the CPU allows, one camera at a time"})
    max_inflight: int = field(default=2, metadata={
        "ge": 1, "le": 8, "help": "frames of this camera in the engine at once (results are "
                                  "applied in frame order)"})
    config: dict = field(default_factory=dict, metadata={"help": "engine config (threshold_d...)"})

    @property
    def live(self) -> bool:
        return is_live_url(self.url)

    @functools.cached_property
    def read_options(self) -> ReadOptions:
        """``config`` parsed once (it was checked when the file was loaded), not per frame."""
        return ReadOptions.parse(self.config)

    @property
    def safe_url(self) -> str:
        return strip_credentials(self.url)


@dataclass(frozen=True)
class OnlyConfig:
    """``only: {lists: [staff]}`` or ``only: {unknown: true}``: which events an output gets."""

    lists: tuple[str, ...] = field(default=(), metadata={"help": "events of these lists"})
    unknown: bool = field(default=False, metadata={"help": "events of no list"})

    def wants(self, known_plate: dict | None) -> bool:
        if known_plate is None:
            return self.unknown
        return not self.lists and not self.unknown or known_plate.get("list") in self.lists


@dataclass(frozen=True)
class OutputConfig:
    name: str
    type: Literal["csv", "jsonl", "webhook", "images", "mqtt"]
    file: str | None = field(default=None, metadata={"help": "csv/jsonl: file name template"})
    url: str | None = field(default=None, metadata={"help": "webhook: target URL"})
    image: ImageKind | None = field(default=None, metadata={"help": "image sent/saved"})
    header: str | tuple[str, ...] | None = field(default=None, metadata={"help": "'Name: value'"})
    request_timeout: float = field(default=30.0, metadata={"gt": 0})
    max_attempts: int | None = field(default=None, metadata={"ge": 1})
    backoff_max: float = field(default=60.0, metadata={"gt": 0})
    dir: str | None = field(default=None, metadata={"help": "images: folder"})
    columns: Literal["pr", "pr+event_id"] = field(default="pr", metadata={
        "help": "csv: Plate Recognizer's 15 columns, or those plus event_id (a correction's "
                "row then names the event it corrects)"})
    only: OnlyConfig | None = field(default=None, metadata={"help": "restrict to known plates"})
    mqtt: MqttConfig | None = None  # set from the type: mqtt section's own keys

    @property
    def image_kind(self) -> ImageKind:
        """The image this output carries: files (csv, jsonl) none, others ``image``."""
        if self.type not in ("webhook", "images"):  # mqtt: text only
            return "none"
        return self.image if self.image is not None else "vehicle"

    @property
    def header_lines(self) -> tuple[str, ...]:
        return (self.header,) if isinstance(self.header, str) else (self.header or ())

    @property
    def headers(self) -> dict[str, str]:
        out = {}
        for h in self.header_lines:
            name, _, value = h.partition(":")
            out[name.strip()] = value.strip()
        return out


@dataclass(frozen=True)
class StreamConfig:
    cameras: dict[str, CameraConfig]
    outputs: dict[str, OutputConfig] = field(default_factory=dict)
    engine: EngineSection = field(default_factory=EngineSection)
    server: ServerSettings = field(default_factory=lambda: ServerSettings(enabled=False))
    timezone: str = "UTC"
    output_dir: str = field(default_factory=lambda: str(resolve_state_dir()))
    spool: str | None = None
    source: str = ""
    state_dir: str = field(default_factory=lambda: str(resolve_state_dir()))
    store: StoreConfig = field(default_factory=StoreConfig)
    known_plates: dict[str, KnownListConfig] = field(default_factory=dict)
    node_id: str = field(default_factory=lambda: topic_part(socket.gethostname()))

    def output_path(self, p: str) -> Path:
        return Path(self.output_dir).expanduser() / p

    @property
    def spool_path(self) -> Path:
        """``spool`` (relative to ``output_dir``), else one spool per config file in the
        state directory: two configs never deliver each other's events."""
        if self.spool is not None:
            return self.output_path(self.spool)
        name = Path(self.source).stem if self.source else "platestream"
        return Path(self.state_dir).expanduser() / "spool" / f"{name}.sqlite"


def is_live_url(url: str) -> bool:
    return url.lower().startswith(_LIVE_SCHEMES) or url.startswith("/dev/video")


def strip_credentials(url: str) -> str:
    """``rtsp://user:pass@host/x?token=t`` -> ``rtsp://host/x?token=***`` (stream.redact)."""
    return scrub(url)


_TOP_KEYS = ("engine", "server", "defaults", "cameras", "outputs", "timezone", "output_dir",
             "spool", "store", "known_plates", "node_id")


def load_config(path: str | os.PathLike[str], *, data_dir: str | os.PathLike[str] | None = None,
                state_dir: str | os.PathLike[str] | None = None) -> StreamConfig:
    """Load and check a config file; raises ConfigError naming the line and key.

    ``state_dir`` defaults to ``stream.state.resolve_state_dir()``; it is where ``output_dir``
    and the spool go when the file does not name them.
    """
    root = compose_file(Path(path))
    src = str(path)
    if not isinstance(root.value, dict):
        fail(root, (), "expected a mapping with 'cameras:' at the top of the file")
    top = root.value
    check_keys(top, list(_TOP_KEYS), ())
    engine = build(EngineSection, top["engine"], ("engine",)) if "engine" in top else None
    server = ServerSettings(enabled=False)
    if "server" in top:
        server = load_server_section(top["server"])
    node_id = None
    if "node_id" in top:
        node_id = top["node_id"].value
        if not isinstance(node_id, str) or not node_id or any(c in node_id for c in "/+# "):
            fail(top["node_id"], ("node_id",), f"expected a name without / + # or spaces, "
                                               f"got {node_id!r}")
    outputs = _outputs(top.get("outputs"), node_id)
    store = build(StoreConfig, top["store"], ("store",)) if "store" in top else StoreConfig()
    known = _known_plates(top.get("known_plates"), Path(src).parent)
    defaults = top.get("defaults")
    if defaults is not None and not isinstance(defaults.value, dict):
        fail(defaults, ("defaults",), "expected a mapping of camera keys")
    cameras_node = top.get("cameras")
    if cameras_node is None or not isinstance(cameras_node.value, dict) or not cameras_node.value:
        fail(cameras_node or root, ("cameras",), "expected a mapping of at least one camera")
    ddir = Path(data_dir).expanduser() if data_dir else None
    cameras = {}
    for name, node in cameras_node.value.items():
        cameras[name] = _camera(name, node, defaults.value if defaults else {}, outputs, ddir)
        remember(cameras[name].url)
    for o in outputs.values():
        if o.url:
            remember(o.url)
    simple = {}
    for key in ("timezone", "output_dir", "spool"):
        if key in top:
            v = top[key].value
            if not isinstance(v, str) or not v:
                fail(top[key], (key,), f"expected a non-empty string, got {v!r}")
            simple[key] = v
    if "timezone" in simple:
        try:
            zoneinfo.ZoneInfo(simple["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            fail(top["timezone"], ("timezone",),
                 f"unknown time zone {simple['timezone']!r} (e.g. UTC, Europe/Paris)")
    state = str(Path(state_dir).expanduser() if state_dir else resolve_state_dir())
    simple.setdefault("output_dir", state)
    return StreamConfig(
        cameras=cameras, outputs=outputs, engine=engine or EngineSection(), server=server,
        source=src, state_dir=state, store=store, known_plates=known, **simple,
        **({"node_id": node_id} if node_id else {}),
    )


def _known_plates(node: Node | None, base: Path) -> dict[str, KnownListConfig]:
    """``known_plates: {staff: {file: staff.csv}, banned: {plates: [AB123CD]}}``; files are
    read once here so a malformed CSV is reported (file and row) before anything starts."""
    if node is None:
        return {}
    if not isinstance(node.value, dict):
        fail(node, ("known_plates",), "expected a mapping of list names")
    out = {}
    for name, n in node.value.items():
        path = ("known_plates", name)
        lc = build(KnownListConfig, n, path, fixed={"name": name})
        if lc.file is None and not lc.plates:
            fail(n, path, "give file: (CSV plate,name,note) and/or plates: [...]")
        out[name] = lc
        try:
            KnownPlates.from_config({name: lc}, base)
        except KnownPlatesError as exc:
            fail(n, path, str(exc))
    return out


def load_server_section(node: Node) -> ServerSettings:
    """The ``server:`` section (also what ``serve --config`` reads from a server-only file)."""
    for key in ("batch_window_ms", "max_batch"):
        if isinstance(node.value, dict) and key in node.value:
            fail(node.value[key], ("server", key),
                 f"moved: write it under engine: (engine.{key}), the one place it lives")
    return build(ServerSettings, node, ("server",))


def _outputs(node: Node | None, node_id: str | None = None) -> dict[str, OutputConfig]:
    if node is None:
        return {}
    if not isinstance(node.value, dict):
        fail(node, ("outputs",), "expected a mapping of output names")
    out = {}
    for name, n in node.value.items():
        path = ("outputs", name)
        if name == "store":
            fail(n, path, "'store' is the event store's name; choose another output name")
        mqtt = None
        if isinstance(n.value, dict) and getattr(n.value.get("type"), "value", None) == "mqtt":
            check_keys(n.value, ["type", "only", "max_attempts", "backoff_max", *MQTT_KEYS],
                       path)
            own = {k: v for k, v in n.value.items() if k in MQTT_KEYS}
            if node_id and "node_id" not in own:  # the top-level node_id names this node
                own["node_id"] = Node(node_id, n.line, n.source)
            mqtt = build(MqttConfig, Node(own, n.line, n.source), path)
            n = Node({k: v for k, v in n.value.items() if k not in own}, n.line, n.source)
        o = build(OutputConfig, n, path, fixed={"name": name, "mqtt": mqtt})
        need = {"csv": "file", "jsonl": "file", "webhook": "url", "images": "dir",
                "mqtt": "mqtt"}[o.type]
        if getattr(o, need) is None:
            fail(n, (*path, need), f"required for type {o.type}")
        if o.type in ("csv", "jsonl") and (problem := check_template(str(o.file))):
            fail(n.value["file"], (*path, "file"), problem)
        if o.type == "webhook" and not str(o.url).startswith(("http://", "https://")):
            fail(n.value["url"], (*path, "url"),
                 f"expected an http:// or https:// URL, got {o.url!r}")
        for h in o.header_lines:
            if ":" not in h or not h.partition(":")[0].strip():
                fail(n.value["header"], (*path, "header"), f"expected 'Name: value', got {h!r}")
        if o.columns != "pr" and o.type != "csv":
            fail(n.value["columns"], (*path, "columns"), "only for type csv")
        if o.type == "images" and o.image_kind == "none":
            fail(n.value["image"], (*path, "image"),
                 "an images output needs vehicle, plate or original")
        out[name] = o
    return out


def _camera(name: str, node: Node, defaults: dict[str, Node], outputs: dict[str, OutputConfig],
            ddir: Path | None) -> CameraConfig:
    path = ("cameras", name)
    if node.value is None:
        fail(node, path, "expected a mapping with at least 'url:'")
    cam = build(CameraConfig, node, path, defaults=defaults, fixed={"name": name})
    merged = {**defaults, **node.value}
    kw = dict(cam.__dict__, name=name)

    def at(key: str) -> Node:
        return merged.get(key, node)

    own, dflt = node.value, defaults
    if ("fps" in own and "sample" in own) or (
        "fps" in dflt and "sample" in dflt and "fps" not in own and "sample" not in own
    ):
        fail(at("fps"), (*path, "fps"), "give either sample or fps, not both")
    if "fps" in own and "sample" in dflt:  # the camera's own choice wins over defaults
        kw["sample"] = 1
    elif "sample" in own and "fps" in dflt:
        kw["fps"] = None
    try:
        kw["regions"] = parse_regions(cam.regions)
        ReadOptions.parse(cam.config)
    except EngineConfigError as exc:
        key = "regions" if str(exc).startswith("regions") else "config"
        fail(at(key), (*path, key), str(exc).split(": ", 1)[-1])
    for o in cam.outputs:
        if o not in outputs:
            fail(at("outputs"), (*path, "outputs"),
                 f"unknown output {o!r}; defined outputs: {', '.join(outputs) or 'none'}")
    kw["zones"] = _zones(at("zones"), (*path, "zones")) if "zones" in merged else ()
    if (m := re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", cam.url)) and not is_live_url(cam.url):
        scheme = m[1].lower()
        if scheme != "file":
            known = [s.split(":")[0] for s in _LIVE_SCHEMES] + ["file"]
            near = difflib.get_close_matches(scheme, known, n=1, cutoff=0.5)
            hint = (f" (did you mean '{near[0]}'?)" if near
                    else f"; expected one of {', '.join(known)}")
            fail(at("url"), (*path, "url"), f"unknown URL scheme '{scheme}'{hint}")
        kw["url"] = _resolve_video(cam.url[len("file://"):], ddir, at("url"), (*path, "url"))
    elif not is_live_url(cam.url):
        kw["url"] = _resolve_video(cam.url, ddir, at("url"), (*path, "url"))
    return CameraConfig(**kw)


def _zones(node: Node, path: tuple[str, ...]) -> tuple[tuple[tuple[float, float], ...], ...]:
    """One polygon ``[[x, y], ...]`` or a list of them; at least 3 points each."""
    raw = node.plain()
    if not isinstance(raw, list):
        fail(node, path, f"expected a polygon [[x, y], ...] or a list of them, got {raw!r}")
    polys = [raw] if raw and _is_point(raw[0]) else raw
    out = []
    for poly in polys:
        if not isinstance(poly, list) or len(poly) < 3 or not all(map(_is_point, poly)):
            fail(node, path, f"a polygon needs at least 3 [x, y] number pairs, got {poly!r}")
        out.append(tuple((float(x), float(y)) for x, y in poly))
    return tuple(out)


def _is_point(p: Any) -> bool:
    return (isinstance(p, list) and len(p) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p))


def _resolve_video(url: str, ddir: Path | None, node: Node, path: tuple[str, ...]) -> str:
    p = Path(url).expanduser()
    tried = [p] if p.is_absolute() else [*([ddir / p] if ddir else []), Path.cwd() / p]
    for cand in tried:
        if cand.is_file():
            return str(cand.resolve())
    fail(node, path, f"video file not found (looked for {', '.join(map(str, tried))}; "
                     "set --data-dir or PLATESTREAM_DATA)")
