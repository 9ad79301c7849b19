"""Events keep the edge node they came from (a hub's store holds many nodes' events)."""

from __future__ import annotations

from stream.store import EventQuery
from tests.stream.store.conftest import event


def test_events_keep_their_node_and_filter_by_it(store):
    store.put({**event(1, "AB123CD"), "node_id": "north"})
    store.put({**event(2, "XY987ZT"), "node_id": "south"})
    store.put(event(3, "KL555MN"))  # from this node's own cameras: no node_id
    north = store.query(EventQuery.from_params({"node": "north"})).events
    assert [(e.event_id, e.node) for e in north] == [("ev-1", "north")]
    assert north[0].to_json()["node"] == "north"
    assert store.get("ev-3").node is None
    assert len(store.query(EventQuery()).events) == 3
    # a resend from the same node is the same row
    store.put({**event(1, "AB123CD"), "node_id": "north"})
    assert len(store.query(EventQuery(node="north")).events) == 1
