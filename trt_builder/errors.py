"""Errors of the engine builder; each message is one line that names the problem."""

from engine.errors import EngineError

__all__ = ["BuildError", "BuildArgumentError"]


class BuildError(EngineError):
    """An engine could not be built (no TensorRT, no GPU, a parser or builder failure)."""


class BuildArgumentError(BuildError, ValueError):
    """A build option is not valid (names the option and the bad value)."""
