"""Known plates: normalisation, Frigate-style matching, CSV seeds and errors, persistence."""

from __future__ import annotations

import pytest

from stream.known_plates import KnownListConfig, KnownPlates, KnownPlatesError
from tests.stream.helpers import make_config


def _known(tmp_path, csv_text: str = "plate,name,note\nAB-123-CD,Ann,blue van\nXY99 ZZ,Bob,\n",
           **kw) -> KnownPlates:
    (tmp_path / "staff.csv").write_text(csv_text)
    return KnownPlates.from_config({
        "staff": KnownListConfig("staff", file="staff.csv"),
        "banned": KnownListConfig("banned", plates=("GG777HH", {"plate": "OB0123",
                                                                "name": "Oscar"}),
                                  match_distance=0),
    }, tmp_path, **kw)


def test_match_exact_folded_and_within_one_edit(tmp_path):
    k = _known(tmp_path)
    assert k.match("ab123cd") == {"list": "staff", "name": "Ann", "plate": "ab123cd",
                                  "distance": 0}
    assert k.match("A8I23CD")["distance"] == 0          # B/8 and I/1 are one character
    assert k.match("08O123") == {"list": "banned", "name": "Oscar", "plate": "ob0123",
                                 "distance": 0}           # O/0 too, even with distance 0
    assert k.match("ab123ce") == {"list": "staff", "name": "Ann", "plate": "ab123cd",
                                  "distance": 1}
    assert k.match("ab123c") is not None                 # one missing character
    assert k.match("ab12xce") is None                    # two edits
    assert k.match("gg777hh")["list"] == "banned"
    assert k.match("gg777hx") is None                    # banned: match_distance 0
    assert k.match("") is None


def test_malformed_csv_is_one_line_naming_file_and_row(tmp_path):
    cfg = {"cameras": {"c": {"url": "rtsp://127.0.0.1/x"}},
           "known_plates": {"staff": {"file": "staff.csv"}}}
    (tmp_path / "staff.csv").write_text("plate,name,note\nab123cd,Ann,\n!!,Bob,\n")
    with pytest.raises(Exception) as exc:
        make_config(tmp_path, cfg)
    msg = str(exc.value)
    assert "\n" not in msg and "staff.csv: row 3" in msg and "known_plates.staff" in msg
    (tmp_path / "staff.csv").write_text("ab123cd,Ann,x,extra\n")
    with pytest.raises(Exception, match=r"staff.csv: row 1: expected plate,name,note"):
        make_config(tmp_path, cfg)
    (tmp_path / "staff.csv").unlink()
    with pytest.raises(Exception, match=r"known_plates.staff.file: cannot read .*staff.csv"):
        make_config(tmp_path, cfg)


def test_api_entries_persist_and_config_entries_are_read_only(tmp_path, store):
    k = _known(tmp_path, backend=store)
    e = k.add("visitors", "cc-555-dd", "Carl", "Thursday")
    assert e.plate == "cc555dd" and e.source == "api"
    with pytest.raises(KnownPlatesError) as exc:
        k.add("visitors", "CC555DD")
    assert exc.value.status == 409
    with pytest.raises(KnownPlatesError) as exc:
        k.delete("staff", "ab123cd")
    assert exc.value.status == 409 and "config file" in str(exc.value)
    with pytest.raises(KnownPlatesError) as exc:
        k.update("visitors", "zz")
    assert exc.value.status == 404
    k.update("visitors", "cc555dd", name="Carl K", list_new="staff")
    assert k.match("cc555dd")["list"] == "staff" and k.match("cc555dd")["name"] == "Carl K"
    n = k.import_csv("visitors", "plate,name,note\nee111ff,Eve,\nff222gg,,\n")
    assert n == 2
    with pytest.raises(KnownPlatesError, match=r"^up.csv: row 2: "):
        k.import_csv("visitors", "hh333ii,ok,\n?,bad,\n", source_name="up.csv")
    assert k.match("hh333ii") is None  # nothing of a bad file is imported
    # a new process sees the API entries (the store), config entries come from the YAML
    k2 = _known(tmp_path, backend=store)
    assert {(e.list, e.plate, e.source) for e in k2.entries()} == {
        ("staff", "ab123cd", "config"), ("staff", "xy99zz", "config"),
        ("banned", "gg777hh", "config"), ("banned", "ob0123", "config"),
        ("staff", "cc555dd", "api"),
        ("visitors", "ee111ff", "api"), ("visitors", "ff222gg", "api")}
    assert k2.export_csv("visitors") == "plate,name,note\nee111ff,Eve,\nff222gg,,\n"
    assert k2.delete("visitors", "ee111ff") and k2.match("ee111ff") is None
    lists = {d["name"]: d for d in k2.lists()}
    assert lists["staff"]["count"] == 3 and lists["staff"]["read_only"]
    assert lists["visitors"] == {"name": "visitors", "count": 1, "match_distance": 1,
                                 "read_only": False}
