"""python-etcd3's watch events (``etcd3.events``): a key's change, its fields read through."""

from typing import Any


class Event:
    """An event: ``key``, and the key-value's fields (``value``, ``version``,
    ``create_revision``, ``mod_revision``, ``lease``); ``prev_<field>`` reads the key-value
    before the change (when the watch asked for it)."""

    def __init__(self, event: Any):
        self.key = event.kv.key
        self._event = event

    def __getattr__(self, name: str) -> Any:
        if name.startswith("prev_"):
            return getattr(self._event.prev_kv, name[5:])
        return getattr(self._event.kv, name)

    def __str__(self) -> str:
        return "{type} key={key} value={value}".format(
            type=self.__class__, key=self.key, value=self.value)


class PutEvent(Event):
    pass


class DeleteEvent(Event):
    pass


def new_event(event: Any) -> Event:
    """The event class for a raw event: DeleteEvent for a delete, else PutEvent."""
    return (DeleteEvent if event.type == "DELETE" else PutEvent)(event)
