"""One trigger with the Python SDK configured by pusher_client.py. Run by node/migrating.mjs:

    python migrating/python/trigger.py LABEL
"""

import sys

from pusher_client import pusher_client


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: trigger.py LABEL")
    label = sys.argv[1]
    try:
        result = pusher_client.trigger("orders", "shipped", {"from": label})
    except Exception as err:  # the SDK raises several unrelated types; report any of them
        sys.exit(f"pusher_client.trigger('orders', 'shipped', ...) failed: {type(err).__name__}: {err}")
    print(f"{label}: trigger returned {result!r}")


if __name__ == "__main__":
    main()
