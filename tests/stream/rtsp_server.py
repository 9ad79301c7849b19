"""A real RTSP server (GStreamer's gst-rtsp-server) streaming an MP4's H.264 track.

Run with Debian's /usr/bin/python3 (it has ``gi``):
    /usr/bin/python3 rtsp_server.py VIDEO PORT [MOUNT] [--announce]
Each client gets its own pipeline from the start of the file, paced in real time; at the end
of the file the stream ends (the client sees end of stream). Prints "READY" when listening;
with ``--announce`` also "CLIENT <unix time>" each time a client's playback is set up (the
moment position 0 of the file goes out, for scripts that place events on the video's timeline).
"""

import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    argv = [a for a in sys.argv[1:] if a != "--announce"]
    announce = len(argv) != len(sys.argv) - 1
    video, port = argv[0], argv[1]
    mount = argv[2] if len(argv) > 2 else "/stream"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{video}" ! qtdemux name=d d.video_0 ! queue ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)
    if announce:
        def on_state(media, state):  # PLAYING: the file's first frame goes out now
            if state == Gst.State.PLAYING:
                print(f"CLIENT {time.time():.3f}", flush=True)

        factory.connect("media-configure",
                        lambda _f, media: media.connect("new-state", on_state))
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print("FAILED to listen", flush=True)
        sys.exit(1)
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
