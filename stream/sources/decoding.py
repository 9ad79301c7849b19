"""A camera's video decoder whose deblocking filter can be switched off (and on) while it runs.

Decoding is the larger half of a CPU-bound camera's cost (1080p25 H.264: ~110 ms of CPU per
second of video against ~95 ms for the analysis at fps 5) and H.264/HEVC's deblocking filter
15-25 % of the decoding (scripts/bench_decode.py); the plates read the same without it
(tests/stream/test_fast_decode.py, scripts/eval_fast_decode.py). ``fast_decode: auto`` turns it
on where the CPU allows it.

FFmpeg reads ``skip_loop_filter`` when a decoder opens, so a switch opens a new decoder: at a
keyframe, which needs no earlier picture, after the old decoder has given out its last frames
(none is lost or repeated).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import av

__all__ = ["Decoder", "FAST_DECODE_OPTIONS", "FAST_DECODE_CODECS"]

log = logging.getLogger(__name__)

# "+fast": FFmpeg's non-spec-compliant speedups (H.264).
FAST_DECODE_OPTIONS = {"skip_loop_filter": "all", "flags2": "+fast"}
# The codecs whose decoders skip their in-loop filters when asked to.
FAST_DECODE_CODECS = frozenset({"h264", "hevc"})


class Decoder:
    """Decodes one video stream of an open container, ``fast`` or not.

    ``request(fast)`` asks for the other mode; it takes effect at the next keyframe. The
    stream's own decoder is used until the first switch (it carries the container's side
    data, such as the display matrix: the frames after a switch lack it, so a caller that
    turns frames reads the rotation once, from the first frame).
    """

    def __init__(self, stream: Any, fast: bool = False, threads: int = 1) -> None:
        self.stream = stream
        self.threads = threads
        self.can_switch = stream.codec_context.name in FAST_DECODE_CODECS
        self.fast = fast and self.can_switch
        self.switches = 0
        self._wanted = self.fast
        self._ctx = self._configure(stream.codec_context, self.fast)

    def request(self, fast: bool) -> None:
        """Decode ``fast`` from the next keyframe on (nothing for other codecs)."""
        self._wanted = fast and self.can_switch

    def frames(self, container: Any) -> Iterator[Any]:
        """The stream's decoded frames, in order, switching modes at keyframes as asked."""
        for packet in container.demux(self.stream):
            if self._wanted != self.fast and packet.is_keyframe:
                yield from self._drain()
                self._ctx = self._open(self._wanted)
                self.fast = self._wanted
                self.switches += 1
                log.debug("stream %s: decoding %s from here", self.stream.index,
                          "without the deblocking filter" if self.fast else "in full")
            yield from self._ctx.decode(packet)

    def _drain(self) -> Iterator[Any]:
        try:
            for frame in self._ctx.decode(None):
                # a flushed frame has no packet to take its time base from
                frame.time_base = frame.time_base or self.stream.time_base
                yield frame
        except av.error.EOFError:  # already flushed
            pass

    def _open(self, fast: bool) -> Any:
        old = self.stream.codec_context
        ctx = av.CodecContext.create(old.codec, "r")
        if old.extradata:
            ctx.extradata = old.extradata  # SPS/PPS of MP4 (avcC) and RTSP (SDP) streams
        return self._configure(ctx, fast)

    def _configure(self, ctx: Any, fast: bool) -> Any:
        """``ctx`` (not opened yet) with this decoder's threads and, when ``fast``, without
        the deblocking filter."""
        ctx.thread_count = self.threads
        if fast:
            ctx.options = dict(FAST_DECODE_OPTIONS)
        return ctx
