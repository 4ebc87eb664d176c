"""{{name}}: a dispatch router. dispatchd runs it once per event, at
fan-out, before the event's deliveries are stored.

componentize-py generates the `wit_world` package from wit/plugin.wit while
it builds: records are dataclasses with snake_case fields (event_type,
subscription_id), headers are (name, value) tuples, `option<string>` is a
str or None, and raising Err("...") returns the result's err arm.
"""

from typing import List

import wit_world
from componentize_py_types import Err  # noqa: F401  (raise Err("why") to fail)
from wit_world.imports import host
from wit_world.imports.types import Destination, Event


class WitWorld(wit_world.WitWorld):
    def route(self, event: Event, destinations: List[Destination]) -> List[Destination]:
        """The hook. `destinations` holds one entry per subscription the
        event matched. Return those to deliver to: remove entries, change
        their url, method or headers, or add entries naming other
        subscriptions. An empty list drops the event."""
        if event.event_type.startswith("test."):
            return []
        # [plugins.NAME.settings] in dispatch.toml: strings as they are,
        # anything else as JSON text.
        only = host.setting("only_subscription")
        if only is not None:
            return [d for d in destinations if d.subscription_id == only]
        host.log(host.Level.DEBUG, f"routed {event.id} to {len(destinations)} destinations")
        return destinations
