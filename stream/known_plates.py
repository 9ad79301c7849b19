"""Known plates (watch lists): named lists of plates an event is matched against.

Lists come from the config (``known_plates: {staff: {file: staff.csv}, banned: {plates:
[AB123CD]}}``; read-only seeds) and from the API (entries persisted in the event store). A
plate matches an entry exactly after normalisation, or within the list's ``match_distance``
edits (default 1, Frigate's rule); O/0, I/1 and B/8 count as the same character.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rapidfuzz.distance import Levenshtein

from engine.errors import EngineError

__all__ = [
    "KnownPlate", "KnownPlates", "KnownPlatesError", "KnownListConfig", "normalize_plate",
    "plate_key", "parse_csv",
]

log = logging.getLogger(__name__)

_FOLD = str.maketrans({"o": "0", "i": "1", "b": "8"})
_NOT_ALNUM = re.compile(r"[^0-9a-z]")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_FIELD = 200


class KnownPlatesError(EngineError, ValueError):
    """Bad input or a refused change; ``status`` is the HTTP status the API answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def normalize_plate(plate: str) -> str:
    """``"AB-123 cd"`` -> ``"ab123cd"`` (what Plate Recognizer reports: lowercase alnum)."""
    return _NOT_ALNUM.sub("", str(plate).lower())


def plate_key(plate: str) -> str:
    """The matching key: normalised, with O/0, I/1, B/8 folded into one character."""
    return normalize_plate(plate).translate(_FOLD)


@dataclass(frozen=True)
class KnownPlate:
    list: str
    plate: str      # normalised
    name: str = ""
    note: str = ""
    source: str = "api"   # "config" (read-only), "api", or "hub" (pushed by a hub, read-only)

    def to_json(self) -> dict[str, str]:
        return {"list": self.list, "plate": self.plate, "name": self.name, "note": self.note,
                "source": self.source}


@dataclass(frozen=True)
class KnownListConfig:
    """One list of the config's ``known_plates:`` section."""

    name: str
    file: str | None = None
    plates: tuple[Any, ...] = ()
    match_distance: int = field(default=1, metadata={"ge": 0, "le": 3})


class KnownBackend(Protocol):
    """Where API entries are persisted (the event store)."""

    def known_load(self) -> list[tuple[str, str, str, str]]: ...
    def known_save(self, entry: KnownPlate) -> None: ...
    def known_remove(self, list_name: str, plate: str) -> None: ...


def parse_csv(text: str, source_name: str, list_name: str) -> list[KnownPlate]:
    """Rows ``plate,name,note`` (a header row naming ``plate`` is skipped); raises
    KnownPlatesError ``"FILE: row N: ..."`` on the first bad row."""
    out: list[KnownPlate] = []
    seen: set[str] = set()
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise KnownPlatesError(f"{source_name}: not a CSV file: {exc}") from None
    for i, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells):
            continue
        if i == 1 and cells[0].lower() == "plate":
            continue
        if len(cells) > 3:
            raise KnownPlatesError(
                f"{source_name}: row {i}: expected plate,name,note, got {len(cells)} columns")
        plate = normalize_plate(cells[0])
        if not 2 <= len(plate) <= 16:
            raise KnownPlatesError(
                f"{source_name}: row {i}: {cells[0]!r} is not a plate (2-16 letters/digits)")
        if plate in seen:
            raise KnownPlatesError(f"{source_name}: row {i}: plate {plate!r} is listed twice")
        seen.add(plate)
        name, note = (cells[1:] + ["", ""])[:2]
        if len(name) > MAX_FIELD or len(note) > MAX_FIELD:
            raise KnownPlatesError(f"{source_name}: row {i}: name/note longer than {MAX_FIELD}")
        out.append(KnownPlate(list_name, plate, name, note, "config"))
    return out


def _check_list_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise KnownPlatesError(
            f"list name {name!r}: use 1-64 letters, digits, '_', '-' or '.'")
    return name


class KnownPlates:
    """Thread-safe: ``match`` runs on analysis threads, edits on the HTTP loop."""

    def __init__(self, seeds: Iterable[KnownPlate] = (), *, distances: Mapping[str, int] = {},
                 backend: KnownBackend | None = None) -> None:
        self._lock = threading.Lock()
        self._backend = backend
        self._distance = dict(distances)
        self._order = list(self._distance)
        self._entries: dict[tuple[str, str], KnownPlate] = {}
        for e in seeds:
            self._entries[(e.list, e.plate)] = e
            self._note_list(e.list)
        if backend is not None:
            for lst, plate, name, note in backend.known_load():
                if (lst, plate) not in self._entries:  # config seeds win
                    self._entries[(lst, plate)] = KnownPlate(lst, plate, name, note, "api")
                    self._note_list(lst)
        self._rebuild()

    @classmethod
    def from_config(cls, lists: Mapping[str, KnownListConfig], base_dir: Path, *,
                    backend: KnownBackend | None = None) -> KnownPlates:
        """Raises KnownPlatesError naming the file and row of a malformed CSV."""
        seeds: list[KnownPlate] = []
        for name, lc in lists.items():
            if lc.file:
                path = Path(lc.file).expanduser()
                path = path if path.is_absolute() else base_dir / path
                try:
                    text = path.read_text(encoding="utf-8-sig")
                except (OSError, UnicodeDecodeError) as exc:
                    raise KnownPlatesError(f"known_plates.{name}.file: cannot read {path}: "
                                           f"{getattr(exc, 'strerror', None) or exc}") from None
                seeds += parse_csv(text, str(path), name)
            have = {e.plate for e in seeds if e.list == name}
            for i, p in enumerate(lc.plates):
                d = p if isinstance(p, dict) else {"plate": p}
                plate = normalize_plate(str(d.get("plate", "")))
                if not 2 <= len(plate) <= 16:
                    raise KnownPlatesError(
                        f"known_plates.{name}.plates[{i}]: {d.get('plate')!r} is not a plate")
                if plate not in have:
                    have.add(plate)
                    seeds.append(KnownPlate(name, plate, str(d.get("name") or ""),
                                            str(d.get("note") or ""), "config"))
        return cls(seeds, distances={n: lc.match_distance for n, lc in lists.items()},
                   backend=backend)

    def _note_list(self, name: str) -> None:
        if name not in self._distance:
            self._distance[name] = 1
            self._order.append(name)

    def _rebuild(self) -> None:
        """An immutable snapshot for ``match`` (lists in config order, then API order)."""
        rank = {n: i for i, n in enumerate(self._order)}
        items = sorted(self._entries.values(), key=lambda e: (rank[e.list], e.plate))
        self._keys = [plate_key(e.plate) for e in items]
        self._items = items
        self._exact = {}
        for k, e in zip(self._keys, items, strict=True):
            self._exact.setdefault(k, e)

    # -- reading -------------------------------------------------------------------------
    def match(self, plate: str) -> dict[str, Any] | None:
        """The best entry for a read plate: ``{"list", "name", "plate", "distance"}`` or None."""
        key = plate_key(plate)
        if not key:
            return None
        keys, items, exact = self._keys, self._items, self._exact  # one consistent snapshot
        best = exact.get(key)
        dist = 0
        if best is None:
            for k, e in zip(keys, items, strict=True):
                limit = self._distance.get(e.list, 1)
                if limit == 0 or abs(len(k) - len(key)) > limit:
                    continue
                d = Levenshtein.distance(key, k, score_cutoff=limit)
                if d <= limit and (best is None or d < dist):
                    best, dist = e, d
                    if d == 1:
                        break
        if best is None:
            return None
        return {"list": best.list, "name": best.name, "plate": best.plate, "distance": dist}

    def lists(self) -> list[dict[str, Any]]:
        with self._lock:
            counts = {n: 0 for n in self._order}
            ro = {n: False for n in self._order}
            for e in self._entries.values():
                counts[e.list] += 1
                ro[e.list] = ro[e.list] or e.source != "api"
            return [{"name": n, "count": counts[n], "match_distance": self._distance[n],
                     "read_only": ro[n]} for n in self._order]

    def entries(self, list_name: str | None = None) -> list[KnownPlate]:
        with self._lock:
            return [e for e in self._items if list_name is None or e.list == list_name]

    def names(self) -> list[str]:
        with self._lock:
            return list(self._order)

    # -- editing (API entries only) -------------------------------------------------------
    def _check(self, list_name: str, plate: str, name: str, note: str) -> tuple[str, str]:
        _check_list_name(list_name)
        p = normalize_plate(plate)
        if not 2 <= len(p) <= 16:
            raise KnownPlatesError(f"plate {plate!r}: expected 2-16 letters/digits")
        if len(str(name)) > MAX_FIELD or len(str(note)) > MAX_FIELD:
            raise KnownPlatesError(f"name and note: at most {MAX_FIELD} characters")
        return list_name, p

    def _get_editable(self, list_name: str, plate: str) -> KnownPlate:
        e = self._entries.get((list_name, normalize_plate(plate)))
        if e is None:
            raise KnownPlatesError(f"no plate {plate!r} in list {list_name!r}", 404)
        if e.source == "config":
            raise KnownPlatesError(
                f"plate {e.plate!r} of list {list_name!r} comes from the config file "
                "(read-only); edit the file instead", 409)
        if e.source == "hub":
            raise KnownPlatesError(
                f"plate {e.plate!r} of list {list_name!r} comes from the hub (read-only "
                "here); edit it on the hub", 409)
        return e

    # -- a hub's lists, pushed to the nodes (issue 15) ----------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Every list and entry, as a hub pushes them to its nodes."""
        with self._lock:
            return {"lists": [{"name": n, "match_distance": self._distance[n]}
                              for n in self._order],
                    "plates": [{"list": e.list, "plate": e.plate, "name": e.name,
                                "note": e.note} for e in self._items]}

    def set_remote(self, snapshot: dict[str, Any], source: str = "hub") -> int:
        """Replace the entries pushed by a hub with ``snapshot`` (``snapshot()``'s shape).

        They are read-only here; this node's own config and API entries win over them.
        Returns how many entries came from ``snapshot``.
        """
        lists = snapshot.get("lists") or []
        plates = snapshot.get("plates") or []
        with self._lock:
            for k in [k for k, e in self._entries.items() if e.source == source]:
                del self._entries[k]
            for lst in lists:
                name = str(lst.get("name") or "")
                if name and name not in self._distance:
                    self._note_list(name)
                    self._distance[name] = int(lst.get("match_distance", 1))
            n = 0
            for p in plates:
                lst, plate = str(p.get("list") or ""), normalize_plate(str(p.get("plate") or ""))
                if not lst or not 2 <= len(plate) <= 16 or (lst, plate) in self._entries:
                    continue
                self._note_list(lst)
                self._entries[(lst, plate)] = KnownPlate(lst, plate, str(p.get("name") or ""),
                                                         str(p.get("note") or ""), source)
                n += 1
            self._rebuild()
        return n

    def add(self, list_name: str, plate: str, name: str = "", note: str = "") -> KnownPlate:
        list_name, p = self._check(list_name, plate, name, note)
        with self._lock:
            if (list_name, p) in self._entries:
                raise KnownPlatesError(f"plate {p!r} is already in list {list_name!r}", 409)
            e = KnownPlate(list_name, p, str(name), str(note), "api")
            if self._backend is not None:
                self._backend.known_save(e)
            self._entries[(list_name, p)] = e
            self._note_list(list_name)
            self._rebuild()
        return e

    def update(self, list_name: str, plate: str, *, plate_new: str | None = None,
               name: str | None = None, note: str | None = None,
               list_new: str | None = None) -> KnownPlate:
        with self._lock:
            old = self._get_editable(list_name, plate)
            lst, p = self._check(list_new or old.list, plate_new or old.plate,
                                 old.name if name is None else name,
                                 old.note if note is None else note)
            new = KnownPlate(lst, p, old.name if name is None else str(name),
                             old.note if note is None else str(note), "api")
            if (lst, p) != (old.list, old.plate) and (lst, p) in self._entries:
                raise KnownPlatesError(f"plate {p!r} is already in list {lst!r}", 409)
            if self._backend is not None:
                if (lst, p) != (old.list, old.plate):
                    self._backend.known_remove(old.list, old.plate)
                self._backend.known_save(new)
            del self._entries[(old.list, old.plate)]
            self._entries[(lst, p)] = new
            self._note_list(lst)
            self._rebuild()
        return new

    def delete(self, list_name: str, plate: str) -> bool:
        with self._lock:
            e = self._get_editable(list_name, plate)
            if self._backend is not None:
                self._backend.known_remove(e.list, e.plate)
            del self._entries[(e.list, e.plate)]
            self._rebuild()
        return True

    def import_csv(self, list_name: str, text: str, *, source_name: str = "upload.csv",
                   replace: bool = False) -> int:
        """All rows or none: a bad row raises KnownPlatesError naming it."""
        _check_list_name(list_name)
        rows = [KnownPlate(list_name, e.plate, e.name, e.note, "api")
                for e in parse_csv(text, source_name, list_name)]
        with self._lock:
            if replace:
                for e in [e for e in self._entries.values()
                          if e.list == list_name and e.source == "api"]:
                    if self._backend is not None:
                        self._backend.known_remove(e.list, e.plate)
                    del self._entries[(e.list, e.plate)]
            n = 0
            for e in rows:
                cur = self._entries.get((e.list, e.plate))
                if cur is not None and cur.source == "config":
                    continue  # the config's entry stays as it is
                if self._backend is not None:
                    self._backend.known_save(e)
                self._entries[(e.list, e.plate)] = e
                n += 1
            self._note_list(list_name)
            self._rebuild()
        return n

    def export_csv(self, list_name: str | None = None) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["plate", "name", "note"] if list_name else ["list", "plate", "name", "note"])
        for e in self.entries(list_name):
            w.writerow([e.plate, e.name, e.note] if list_name
                       else [e.list, e.plate, e.name, e.note])
        return buf.getvalue()
