"""Real servers for the store and MQTT tests: Debian's mosquitto and PostgreSQL, started on a
free loopback port in a temporary directory and stopped afterwards (bounded waits)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.stream.helpers import free_port

MOSQUITTO = "/usr/sbin/mosquitto"


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


class Mosquitto:
    """``start()``/``stop()`` again on the same port: a broker that goes down and comes back."""

    def __init__(self, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        """``users``: name -> password (password_file, no anonymous clients); ``tls``: (CA,
        server certificate, its key) PEM files: the listener speaks only TLS."""
        if not os.path.exists(MOSQUITTO):
            raise RuntimeError(f"{MOSQUITTO} not found (apt-get install mosquitto; "
                               "scripts/setup.sh --test installs it)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="platestream-mqtt-"))
        os.chmod(self.dir, 0o755)
        lines = [f"listener {self.port} 127.0.0.1", "persistence false",
                 "log_dest stderr", "log_type error"]
        if tls:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        if os.geteuid() == 0:
            lines.append("user root")  # keep reading our files instead of dropping to mosquitto
        if users:
            pw = self.dir / "passwd"
            pw.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True,
                               capture_output=True, timeout=10)
            os.chmod(pw, 0o600)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not _wait_port(self.port, 10):
            self.stop()
            raise RuntimeError("mosquitto did not start listening within 10 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Postgres:
    """A throwaway cluster. PostgreSQL refuses to run as root, so as root it runs as the
    ``postgres`` user (Debian's package creates it)."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install "
                               "postgresql; scripts/setup.sh --test installs it)")
        self.bin = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="platestream-pg-"))
        self.data = self.dir / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and no 'postgres' user to run as") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                   "postgres", "--no-sync", "-E", "UTF8"], 120)
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                   str(self.dir / "log"), "-w", "-t", "60", "-o",
                   f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                   "start"], 90)

    def _run(self, cmd: list[str], timeout: float) -> None:
        r = subprocess.run([*self.prefix, *cmd], capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            log = (self.dir / "log").read_text()[-500:] if (self.dir / "log").exists() else ""
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {(r.stderr or r.stdout)[-500:]}"
                               f" {log}")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_db(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                       "stop"], 60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
