"""py-enrich: adds fields and a header, renames the event type, drops or
fails on request. A transformer of dispatch:plugin@0.1.0, in Python.

componentize-py generates the `wit_world` package from the WIT file while
it builds (see build.sh): records are dataclasses with snake_case fields
(event_type, subscription_id, received_at), headers are (name, value)
tuples, `option<string>` is a str or None, the decision is
Decision_Deliver(request) or Decision_Drop(reason), and raising
Err("...") returns the result's err arm.
"""

import json
import math

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    Decision,
    Decision_Deliver,
    Decision_Drop,
    Event,
    Request,
)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


class WitWorld(wit_world.WitWorld):
    def transform(self, event: Event, request: Request) -> Decision:
        try:
            data = json.loads(request.payload, parse_constant=_no_constants)
        except ValueError as e:
            raise Err(f"py plugin: payload is not JSON: {e}")
        if isinstance(data, dict) and data.get("fail") is True:
            raise Err("py plugin: failure requested")
        if isinstance(data, dict) and data.get("drop") is True:
            return Decision_Drop("py plugin: drop requested")
        if isinstance(data, dict):
            data["enriched_by"] = "py"
            total = data.get("total")
            if isinstance(total, (int, float)) and not isinstance(total, bool):
                # Half up, like JavaScript's Math.round (Python's round()
                # rounds half to even).
                data["total_cents"] = math.floor(total * 100 + 0.5)
            request.payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        suffix = host.setting("suffix")
        if suffix:
            request.event_type += suffix
        _set_header(request, "x-enriched-by", "py")
        host.log(host.Level.DEBUG, f"enriched {event.id} ({request.event_type})")
        return Decision_Deliver(request)


def _set_header(request: Request, name: str, value: str) -> None:
    """Sets header `name` (case-insensitive), replacing any value it had."""
    headers = request.destination.headers
    headers[:] = [(k, v) for k, v in headers if k.lower() != name.lower()]
    headers.append((name, value))
