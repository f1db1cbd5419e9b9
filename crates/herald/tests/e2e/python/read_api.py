"""Call the official Python `pusher` SDK against Herald, for node/read_api.mjs.

Reads a list of calls as JSON on stdin and prints one JSON list with what each returned, for the
Node script to check (the tokens it goes on to use in real subscriptions and a sign-in):

    [{"call": "channel_info", "args": ["presence-x", ["user_count"]]}, ...]

Only the read API, the auth helpers and the user endpoints are allowed: channels_info,
channel_info, users_info, authenticate, authenticate_user, send_to_user and
terminate_user_connections (which the SDK sends to /users/{id}/terminate_connections, without
/apps/{id}).
"""

import json
import os
import sys

import pusher

ALLOWED = {
    "channels_info",
    "channel_info",
    "users_info",
    "authenticate",
    "authenticate_user",
    "send_to_user",
    "terminate_user_connections",
}


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
    results = []
    for request in json.load(sys.stdin):
        name, args = request["call"], request.get("args", [])
        if name not in ALLOWED:
            sys.exit(f"call not allowed: {name!r}")
        shown = f"{name}({', '.join(repr(arg) for arg in args)})"
        try:
            result = getattr(client, name)(*args)
        except Exception as err:  # the SDK raises several unrelated types; report any of them
            sys.exit(f"{shown} failed: {type(err).__name__}: {err}")
        print(f"{shown} -> {result!r}", file=sys.stderr, flush=True)
        results.append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
