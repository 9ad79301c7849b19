"""``platestream hub``: one event store and API for a fleet of edge nodes, fed over MQTT."""
