"""Video sources: one decoding thread per camera feeding a latest-wins frame slot."""

from stream.backoff import Backoff
from stream.sources.frames import Frame, FrameSlot, SourceEnded
from stream.sources.reader import CameraReader, ReaderStats

__all__ = ["Backoff", "Frame", "FrameSlot", "SourceEnded", "CameraReader", "ReaderStats"]
