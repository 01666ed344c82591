"""Publishing proctor events: the Python API (:class:`Publisher`) and ``proctor publish``."""

from services.publisher.publisher import Delivery, Publisher, new_event

__all__ = ["Delivery", "Publisher", "new_event"]
