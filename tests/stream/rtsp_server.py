"""A real RTSP server (GStreamer's gst-rtsp-server) streaming an MP4's H.264 track.

Run with Debian's /usr/bin/python3 (it has ``gi``):
    /usr/bin/python3 rtsp_server.py VIDEO PORT [MOUNT]
Each client gets its own pipeline from the start of the file, paced in real time; at the end
of the file the stream ends (the client sees end of stream). Prints "READY" when listening.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    video, port = sys.argv[1], sys.argv[2]
    mount = sys.argv[3] if len(sys.argv) > 3 else "/stream"
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
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print("FAILED to listen", flush=True)
        sys.exit(1)
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
