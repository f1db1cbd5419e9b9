# config/initializers/pusher.rb: the `pusher` gem pointed at Herald, one setting at a time (for when
# PUSHER_URL is not an option). Every value comes from the environment, with Laravel's names.

require 'pusher'

Pusher.app_id = ENV.fetch('PUSHER_APP_ID')
Pusher.key    = ENV.fetch('PUSHER_APP_KEY')
Pusher.secret = ENV.fetch('PUSHER_APP_SECRET')
Pusher.host   = ENV.fetch('PUSHER_HOST')
Pusher.port   = Integer(ENV.fetch('PUSHER_PORT'))
Pusher.scheme = ENV.fetch('PUSHER_SCHEME', 'https')
