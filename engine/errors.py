"""Exceptions raised by the engine. Each message says what failed, where, and how to fix it."""

__all__ = ["EngineError", "ModelLoadError", "BackendError", "BackendUnavailable",
           "EngineConfigError", "ImageError"]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ModelLoadError(EngineError):
    """A model file is missing, corrupt or of the wrong shape."""


class BackendError(EngineError):
    """An inference backend could not be created or failed to run."""


class BackendUnavailable(BackendError):
    """A remote inference server cannot be reached now; nothing ran (drop the frame, retry
    later: the backend recovers by itself when the server returns)."""


class EngineConfigError(EngineError, ValueError):
    """An engine config key or value is not valid (names the key)."""


class ImageError(EngineError, ValueError):
    """An input image cannot be used: empty, not an image, truncated or too large."""
