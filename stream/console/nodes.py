"""The hub's Nodes page: every edge node, online or offline, with its cameras.

The hub keeps each node's retained heartbeat (``Hub.nodes``); the page renders it and the
console's live stream (``/ui/live``, once a second) carries it again as ``status.nodes``, so a
node that dies shows offline on an open page within 2 x its heartbeat, without a reload.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from stream.console.views import CONSOLE, page

__all__ = ["ago", "nodes_page"]


def ago(seconds: float | None) -> str:
    """``3 s ago``, ``5 min ago``, ``2 h ago``, ``4 d ago`` (the same words as nodes.js)."""
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


@page("nodes.html")
async def nodes_page(request: web.Request) -> dict[str, Any]:
    con = request.app[CONSOLE]
    if con.nodes is None:
        return {"title": "Nodes", "nodes": [], "available": False, "online": 0}
    nodes = await asyncio.to_thread(con.nodes)
    return {"title": "Nodes", "nodes": nodes, "available": True,
            "online": sum(1 for n in nodes if n["online"])}
