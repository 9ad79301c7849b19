"""At-least-once delivery of events from a durable SQLite spool."""

from stream.delivery.spool import Item, Spool
from stream.delivery.webhook import WebhookSender
from stream.delivery.worker import DeliveryError, DeliveryWorker, stop_workers

__all__ = ["Item", "Spool", "DeliveryError", "DeliveryWorker", "WebhookSender", "stop_workers"]
