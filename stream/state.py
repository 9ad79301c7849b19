"""The state directory: where commands keep what they write by default (the delivery spool,
the HTTP API's usage counter and webhook spool, TensorRT engines, the event store).

``$PLATESTREAM_STATE``, else ``$XDG_STATE_HOME/platestream``, else
``~/.local/state/platestream`` (the Docker images set ``PLATESTREAM_STATE=/data``). Nothing is
ever written to the current directory unless a config or an option names a relative path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from engine.errors import EngineError

__all__ = ["StateDirError", "resolve_state_dir", "writable_dir"]


class StateDirError(EngineError):
    """A directory we must write to cannot be created or written; one line naming it."""


def resolve_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The state directory (not created; see ``writable_dir``)."""
    env = os.environ if env is None else env
    if env.get("PLATESTREAM_STATE"):
        return Path(env["PLATESTREAM_STATE"]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]).expanduser() / "platestream"
    return Path.home() / ".local" / "state" / "platestream"


def writable_dir(path: str | os.PathLike[str], what: str = "state directory") -> Path:
    """Create ``path`` if needed and prove it writable, else raise StateDirError.

    Called when a command starts, so a bad directory is one line then, not a traceback from
    a delivery thread later.
    """
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StateDirError(f"{what} {p} is not writable: {reason} (set PLATESTREAM_STATE "
                            "or name another path)") from None
    return p
