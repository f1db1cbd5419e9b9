"""Check webhooks Herald sent with the official Python `pusher` SDK, for node/webhooks.mjs.

Reads the webhooks as JSON on stdin, exactly as the receiver got them (header values and raw body):

    [{"key": "<X-Pusher-Key>", "signature": "<X-Pusher-Signature>", "body": "<raw body>"}, ...]

and prints one JSON list with what `Pusher.validate_webhook(key, signature, body)` returned for
each: the parsed body when the SDK accepts the webhook (right key, HMAC-SHA256 of the body with the
app secret, `time_ms` within 300 s of this machine's clock), `null` when it rejects it.
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


def main():
    client = pusher.Pusher(
        app_id=setting("HERALD_APP_ID"),
        key=setting("HERALD_KEY"),
        secret=setting("HERALD_SECRET"),
    )
    results = [client.validate_webhook(hook["key"], hook["signature"], hook["body"]) for hook in json.load(sys.stdin)]
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
