"""The Python `pusher` SDK pointed at Herald, every setting from the environment (Laravel's names)."""

import os

import pusher

pusher_client = pusher.Pusher(
    app_id=os.environ["PUSHER_APP_ID"],
    key=os.environ["PUSHER_APP_KEY"],
    secret=os.environ["PUSHER_APP_SECRET"],
    host=os.environ["PUSHER_HOST"],
    port=int(os.environ["PUSHER_PORT"]),
    ssl=os.environ.get("PUSHER_SCHEME", "https") == "https",
)
