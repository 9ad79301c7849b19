"""A managed-style broker: TLS with a private CA and a password per client, on real processes.

Debian's mosquitto listens on a free 127.0.0.1 port with only TLS (a CA and a server
certificate made here with the ``openssl`` CLI) and a ``password_file`` (``mosquitto_passwd
-b``). A real `platestream run` node's mqtt output (events and heartbeat) and a real
`platestream hub` connect with ``tls: {ca_certs: ...}`` + username/password; a wrong password
is one clear line in the log and a state in /status/, never the password.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.stream.fleet import HubProcess, run_node, stop_node
from tests.stream.helpers import free_port, wait_for
from tests.stream.services import Mosquitto

HUB_PW = "hub-s3cret-pw-41d2"
NODE_PW = "north-s3cret-pw-9be7"
WRONG_PW = "not-the-pw-c0ffee"

if not shutil.which("openssl"):
    pytest.skip("no openssl CLI (apt-get install openssl)", allow_module_level=True)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A self-signed CA and a server certificate it signed for 127.0.0.1 / localhost."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=platestream test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=d)
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


@pytest.fixture(scope="module")
def client_cert(pki) -> dict[str, Path]:
    """A client certificate signed by the same CA (for a listener that requires one)."""
    d = pki["ca"].parent
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out",
             "client.csr", "-subj", "/CN=gate-north", cwd=d)
    (d / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.cnf",
             cwd=d)
    return {"cert": d / "client.pem", "key": d / "client.key"}


@pytest.fixture
def broker(pki):
    try:
        b = Mosquitto(users={"hub": HUB_PW, "north": NODE_PW},
                      tls=(pki["ca"], pki["cert"], pki["key"]))
        b.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"mosquitto cannot start here: {exc}")
    yield b
    b.close()


def _mqtt(pki, user: str, password: str) -> dict:
    return {"tls": {"ca_certs": str(pki["ca"])}, "username": user, "password": password}


def _no_secret(text: str) -> None:
    for pw in (HUB_PW, NODE_PW, WRONG_PW):
        assert pw not in text


def test_tls_and_passwords_node_to_broker_to_hub(broker, pki, tmp_path, evaldata):
    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"},
                     mqtt=_mqtt(pki, "hub", HUB_PW))
    proc, log, d = run_node(tmp_path, broker.port, "north",
                            str(evaldata / "videos/license_plate.mp4"), evaldata,
                            mqtt=_mqtt(pki, "north", NODE_PW))
    try:
        rc = proc.wait(300)
        log.close()
        node_log = (d / "node.log").read_text()
        assert rc == 0, node_log[-2000:]
        ids = {json.loads(x)["event_id"] for x in (d / "events.jsonl").read_text().splitlines()
               if x.strip()}
        assert ids, "the node produced no event"
        assert wait_for(lambda: {e["event_id"] for e in hub.events("&node=north")} == ids, 30), \
            hub.tail()
        assert "LS15EBC" in {e["plate"].upper() for e in hub.events()}
        north = hub.nodes()["north"]  # the heartbeat came over TLS too; a clean stop says so
        assert north["state"] == "offline" and "street" in north["cameras"]
        status = hub.get("/status/")
        assert status["connected"] and status["last_error"] is None
        _no_secret(node_log + hub.tail() + json.dumps(status))
    finally:
        stop_node(proc, log)
        hub.stop()


def test_wrong_password_is_one_clear_line_and_a_status_never_the_password(
        broker, pki, tmp_path, evaldata):
    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"},
                     mqtt=_mqtt(pki, "hub", WRONG_PW), wait_connected=False)
    port = free_port()
    proc, log, d = run_node(tmp_path, broker.port, "north",
                            str(evaldata / "videos/license_plate.mp4"), evaldata,
                            mqtt=_mqtt(pki, "north", WRONG_PW), realtime=True,
                            server_port=port)
    try:
        assert wait_for(lambda: hub.get("/status/")["last_error"], 20), hub.tail()
        status = hub.get("/status/")
        assert not status["connected"]
        assert "refused the connection" in status["last_error"]
        assert "check mqtt.username and mqtt.password" in status["last_error"]
        with urllib.request.urlopen(hub.base + "/ui/health", timeout=5) as r:  # the console
            health = r.read().decode()
        assert "refused the connection: Not authorized" in health and WRONG_PW not in health

        def node_output() -> dict:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=5) as r:
                    return json.loads(r.read())["outputs"]["hub"]
            except OSError:
                return {}

        assert wait_for(lambda: node_output().get("connection_error"), 90), \
            (d / "node.log").read_text()[-2000:]
        out = node_output()
        assert "refused the connection" in out["connection_error"]
        assert "check the output's username and password" in out["connection_error"]
        assert out["connected"] is False
        # the broker keeps refusing (retries every few seconds): still one line each
        wait_for(lambda: False, 6)
        hub_log = hub.tail()
        assert hub_log.count("refused the connection") == 1, hub_log
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        node_log = (d / "node.log").read_text()
        # the connections say it once each (the events' and the heartbeat's); the delivery
        # worker's retries of a pending event (with backoff) repeat the same clear reason
        for who in ("stream.delivery.mqtt:", "stream.node_status:"):
            said = [ln for ln in node_log.splitlines() if who in ln and "refused" in ln]
            assert len(said) == 1 and "refused the connection: Not authorized" in said[0], said
        assert "Traceback" not in node_log + hub_log
        _no_secret(node_log + hub_log + json.dumps(status) + json.dumps(out))
    finally:
        stop_node(proc, log)
        hub.stop()


def test_tls_settings_load_and_bad_files_are_config_errors(pki, tmp_path):
    from stream.config import load_config
    from stream.hub.config import load_hub_config
    from stream.yamlconf import ConfigError

    (tmp_path / "junk.pem").write_text("not a certificate\n")
    hub = tmp_path / "hub.yaml"

    def hub_with(tls: str):
        hub.write_text(f"mqtt: {{host: broker, port: 8883, username: hub, password: {HUB_PW},"
                       f"\n       {tls}}}\n")
        return load_hub_config(hub).mqtt

    m = hub_with(f"tls: {{ca_certs: {pki['ca']}}}")
    assert m.tls_options() == {"ca_certs": str(pki["ca"]), "certfile": None, "keyfile": None}
    assert HUB_PW not in repr(m) and "tls=True" in repr(m)
    assert hub_with("tls: true").tls_options() == {"ca_certs": None, "certfile": None,
                                                   "keyfile": None}
    assert hub_with(f"ca_file: {pki['ca']}").tls_options()["ca_certs"] == str(pki["ca"])
    assert hub_with("tls: false").tls_options() is None
    for tls, message in [
        (f"tls: {{ca_certs: {tmp_path}/nope.pem}}", "tls.ca_certs: no such file"),
        (f"tls: {{ca_certs: {tmp_path}/junk.pem}}", "is not a PEM CA bundle"),
        ("tls: {ca_cert: x}", "mqtt.tls.ca_cert: unknown key (did you mean 'ca_certs'?)"),
        (f"tls: {{keyfile: {pki['key']}}}", "tls.keyfile needs tls.certfile"),
        (f"tls: {{certfile: {tmp_path}/junk.pem}}", "is not a PEM certificate"),
        ("tls: 3", "expected true or false or a mapping"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)) as err:
            hub_with(tls)
        assert "hub.yaml:" in str(err.value) and HUB_PW not in str(err.value)

    node = tmp_path / "node.yaml"  # the same keys on a node's mqtt output
    node.write_text(f"""\
cameras: {{gate: {{url: "rtsp://127.0.0.1:9/none", outputs: [hub]}}}}
outputs:
  hub: {{type: mqtt, host: broker, port: 8883, username: north, password: {NODE_PW},
        tls: {{ca_certs: {pki['ca']}}}}}
""")
    out = load_config(node).outputs["hub"].mqtt
    assert out.tls_options()["ca_certs"] == str(pki["ca"]) and out.password == NODE_PW


def test_a_broker_certificate_from_another_ca_is_a_clear_status(broker, pki, tmp_path):
    # tls: true trusts the system's CAs only: our broker's private CA is not one of them
    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"},
                     mqtt={"tls": True, "username": "hub", "password": HUB_PW},
                     wait_connected=False)
    try:
        assert wait_for(lambda: hub.get("/status/")["last_error"], 20), hub.tail()
        error = hub.get("/status/")["last_error"]
        assert "certificate was not accepted" in error and "tls.ca_certs" in error, error
        wait_for(lambda: False, 3)  # retries: the same line is not repeated
        assert hub.tail().count("certificate was not accepted") == 1, hub.tail()
        assert "Traceback" not in hub.tail()
        _no_secret(hub.tail() + error)
    finally:
        hub.stop()


def test_client_certificate_for_a_broker_that_requires_one(pki, client_cert, tmp_path):
    try:
        b = Mosquitto(users={"hub": HUB_PW}, tls=(pki["ca"], pki["cert"], pki["key"]))
        b.conf.write_text(b.conf.read_text() + "require_certificate true\n")
        b.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"mosquitto cannot start here: {exc}")
    hubs = []
    try:
        mqtt = _mqtt(pki, "hub", HUB_PW)
        without = HubProcess(tmp_path, b.port, "without", {"path": "events.sqlite"},
                             mqtt=mqtt, wait_connected=False)
        hubs.append(without)
        mqtt["tls"] = {"ca_certs": str(pki["ca"]), "certfile": str(client_cert["cert"]),
                       "keyfile": str(client_cert["key"])}
        hubs.append(HubProcess(tmp_path, b.port, "with", {"path": "events.sqlite"}, mqtt=mqtt))
        assert hubs[1].get("/status/")["connected"]  # waited for by HubProcess
        assert wait_for(lambda: without.get("/status/")["last_error"], 20), without.tail()
        status = without.get("/status/")
        assert not status["connected"], status
        assert "closed the connection before accepting it" in status["last_error"]
        assert "tls.certfile" in status["last_error"]
        assert "Traceback" not in without.tail()
    finally:
        for h in hubs:
            h.stop()
        b.close()
