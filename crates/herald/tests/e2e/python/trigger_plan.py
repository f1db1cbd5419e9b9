"""Publish to Herald with the official Python `pusher` SDK, following a plan read as JSON on stdin.

The plan is the list that node/sdk_events.mjs builds, so the Node and Python SDKs publish the same
events and the receiving side checks them the same way:

    [{"op": "trigger", "channels": "a" | ["a", "b"], "event": "e", "data": ...},
     {"op": "trigger_batch", "batch": [{"channel": "a", "name": "e", "data": ...}, ...]}]
"""

import json
import os
import sys

import pusher


def setting(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set")
    return value



def trusting_backend():
    """The SDK's own requests backend, trusting the CA in REQUESTS_CA_BUNDLE when set.

    With ssl=True the SDK verifies against the CA bundle it ships (pusher/cacert.pem), whatever
    requests is told; a server with a private CA needs this (a public certificate does not).
    """
    from pusher.requests import RequestsBackend

    ca = os.environ.get("REQUESTS_CA_BUNDLE")
    if not ca:
        return None

    class TrustingBackend(RequestsBackend):
        def __init__(self, client, **options):
            super().__init__(client, **options)
            self.options["verify"] = ca

    return TrustingBackend

def main():
    client = pusher.Pusher(
        app_id=setting("HERALD_APP_ID"),
        key=setting("HERALD_KEY"),
        secret=setting("HERALD_SECRET"),
        host=setting("HERALD_HOST"),
        # The SDK insists on an int here.
        port=int(os.environ.get("HERALD_REST_PORT") or setting("HERALD_PORT")),
        # HERALD_TLS: https only, with the test's CA (see trusting_backend).
        ssl=os.environ.get("HERALD_TLS") == "1",
        backend=trusting_backend(),
        timeout=10,
    )
    for op in json.load(sys.stdin):
        if op["op"] == "trigger":
            call = f"trigger({op['channels']!r}, {op['event']!r}, ...)"
            try:
                result = client.trigger(op["channels"], op["event"], op["data"])
            except Exception as err:  # the SDK raises several unrelated types; report any of them
                sys.exit(f"{call} failed: {type(err).__name__}: {err}")
        elif op["op"] == "trigger_batch":
            call = f"trigger_batch({len(op['batch'])} events)"
            try:
                result = client.trigger_batch(op["batch"])
            except Exception as err:
                sys.exit(f"{call} failed: {type(err).__name__}: {err}")
        else:
            sys.exit(f"unknown op in plan: {op!r}")
        print(f"{call} returned {result!r}", flush=True)


if __name__ == "__main__":
    main()
