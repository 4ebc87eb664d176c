"""{{name}}: a dispatch transformer. dispatchd runs it once per delivery,
in the `plugins` chain of each subscription that lists it, before it signs
and sends the request.

componentize-py generates the `wit_world` package from wit/plugin.wit while
it builds: records are dataclasses with snake_case fields (event_type,
subscription_id), headers are (name, value) tuples, `option<string>` is a
str or None, and raising Err("...") returns the result's err arm.
"""

import wit_world
from componentize_py_types import Err  # noqa: F401  (raise Err("why") to fail)
from wit_world.imports import host
from wit_world.imports.types import Decision, Decision_Deliver, Decision_Drop, Event, Request


class WitWorld(wit_world.WitWorld):
    def transform(self, event: Event, request: Request) -> Decision:
        """The hook. `request` is what dispatchd would send (or what the
        previous plugin of the chain returned). Return Decision_Deliver with
        it, changed or not; Decision_Drop(reason) sends nothing; raising
        Err(...) fails this attempt (retried, then dead-lettered)."""
        if event.event_type.startswith("test."):
            return Decision_Drop("test events are not delivered")
        # [plugins.NAME.settings] in dispatch.toml: strings as they are,
        # anything else as JSON text.
        tag = host.setting("tag") or "{{name}}"
        headers = request.destination.headers
        headers[:] = [(k, v) for k, v in headers if k.lower() != "x-processed-by"]
        headers.append(("x-processed-by", tag))
        host.log(host.Level.DEBUG, f"processed {event.id}")
        return Decision_Deliver(request)
