"""Config keys of issue 11: store:, known_plates:, only:, type: mqtt — errors name key and line."""

from __future__ import annotations

import pytest

from stream.config import ConfigError
from tests.stream.helpers import make_config

CAM = {"c": {"url": "rtsp://127.0.0.1/x", "outputs": ["ha"]}}


def _cfg(tmp_path, outputs=None, **top):
    return make_config(tmp_path, {"cameras": CAM, "outputs": outputs or {
        "ha": {"type": "mqtt"}}, **top})


def test_mqtt_output_keys(tmp_path):
    cfg = _cfg(tmp_path, {"ha": {"type": "mqtt", "host": "10.0.0.2", "port": 8883, "tls": True,
                                 "username": "u", "password": "pw-secret", "qos": 0,
                                 "only": {"lists": ["staff"]}, "node_id": "gate box"}})
    o = cfg.outputs["ha"]
    assert o.mqtt.host == "10.0.0.2" and o.mqtt.port == 8883 and o.mqtt.qos == 0
    assert o.mqtt.node_id == "gate_box" and o.only.lists == ("staff",)
    assert "pw-secret" not in repr(o.mqtt)
    with pytest.raises(ConfigError, match=r"config.yaml:\d+: outputs.ha.hots: unknown key "
                                          r"\(did you mean 'host'\?\)"):
        _cfg(tmp_path, {"ha": {"type": "mqtt", "hots": "x"}})
    with pytest.raises(ConfigError, match=r"outputs.ha.qos: must be <= 2"):
        _cfg(tmp_path, {"ha": {"type": "mqtt", "qos": 3}})
    with pytest.raises(ConfigError, match=r"outputs.ha.host: unknown key"):
        _cfg(tmp_path, {"ha": {"type": "jsonl", "file": "x.jsonl", "host": "h"}})
    with pytest.raises(ConfigError, match=r"topic_prefix"):
        _cfg(tmp_path, {"ha": {"type": "mqtt", "topic_prefix": "a/#"}})


def test_store_and_only_keys(tmp_path):
    cfg = _cfg(tmp_path, store={"keep_days": 7, "max_image_mb": 100})
    assert cfg.store.keep_days == 7 and cfg.store.enabled
    with pytest.raises(ConfigError, match=r"store.url: expected a postgresql:// URL, got "
                                          r"'mysql://u:\*\*\*@db/x'"):
        _cfg(tmp_path, store={"url": "mysql://u:pw@db/x"})
    with pytest.raises(ConfigError, match=r"store.keep_days: must be > 0"):
        _cfg(tmp_path, store={"keep_days": 0})
    with pytest.raises(ConfigError, match=r"outputs.ha.only.lists: expected a list"):
        _cfg(tmp_path, {"ha": {"type": "mqtt", "only": {"lists": "staff"}}})
    with pytest.raises(ConfigError, match=r"outputs.store: 'store' is the event store's name"):
        make_config(tmp_path, {"cameras": {"c": {"url": "rtsp://127.0.0.1/x"}},
                               "outputs": {"store": {"type": "jsonl", "file": "x"}}})
    with pytest.raises(ConfigError, match=r"known_plates.vip: give file:"):
        _cfg(tmp_path, known_plates={"vip": {"match_distance": 1}})
    with pytest.raises(ConfigError, match=r"known_plates.vip.plates\[0\]: '\?' is not a plate"):
        _cfg(tmp_path, known_plates={"vip": {"plates": ["?"]}})
