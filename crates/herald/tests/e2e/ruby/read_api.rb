# The Ruby gem's read API and auth helpers against Herald, for node/read_api.mjs: while its
# pusher-js clients hold PRESENCE open, this asks the REST API about it and signs tokens for the
# connection SOCKET_ID, then prints everything the gem returned as one JSON object for the Node
# script to check (and to use the tokens in real subscriptions and a sign-in):
#
#   pusher-ruby --gem latest ruby/read_api.rb PRESENCE PRIVATE SOCKET_ID
#
#   channel_info          Pusher.channel_info(PRESENCE, info: 'user_count,subscription_count')
#   channels              Pusher.channels(filter_by_prefix: 'presence-', info: 'user_count')
#   channel_users         Pusher.channel_users(PRESENCE)
#   private_auth          Pusher.authenticate(PRIVATE, SOCKET_ID)
#   presence_auth         Pusher.authenticate(PRESENCE, SOCKET_ID, user_id: 'ruby', user_info: {...})
#   user_auth             Pusher.default_client.authenticate_user(SOCKET_ID, id: 'ruby', ...)

require 'json'
require 'pusher'

presence, private_channel, socket_id = ARGV
abort 'usage: read_api.rb PRESENCE PRIVATE SOCKET_ID' unless presence && private_channel && socket_id

settings = %w[HERALD_HOST HERALD_PORT HERALD_APP_ID HERALD_KEY HERALD_SECRET].to_h do |var|
  [var, ENV.fetch(var) { abort "#{var} is not set" }]
end

# HERALD_TLS: https only; httpclient trusts the test CA through SSL_CERT_FILE (set by e2e.rs).
scheme = ENV['HERALD_TLS'] == '1' ? 'https' : 'http'
Pusher.url = "#{scheme}://#{settings['HERALD_KEY']}:#{settings['HERALD_SECRET']}" \
             "@#{settings['HERALD_HOST']}:#{ENV.fetch('HERALD_REST_PORT', settings['HERALD_PORT'])}/apps/#{settings['HERALD_APP_ID']}"
# httpclient's default is a 60 s receive timeout; fail well inside the scenario's own timeout.
Pusher.timeout = 10

def call(what)
  result = yield
  warn "#{what} -> #{result.inspect}"
  result
rescue Pusher::Error => e
  abort "#{what} failed: #{e.class}: #{e.message}"
end

member = { user_id: 'ruby', user_info: { gem: Pusher::VERSION, ruby: RUBY_VERSION } }
user = { id: 'ruby', user_info: { name: 'Ruby gem' } }
results = {
  gem: Pusher::VERSION,
  channel_info: call("Pusher.channel_info(#{presence}, info: 'user_count,subscription_count')") do
    Pusher.channel_info(presence, info: 'user_count,subscription_count')
  end,
  channels: call("Pusher.channels(filter_by_prefix: 'presence-', info: 'user_count')") do
    Pusher.channels(filter_by_prefix: 'presence-', info: 'user_count')
  end,
  channel_users: call("Pusher.channel_users(#{presence})") { Pusher.channel_users(presence) },
  private_auth: call("Pusher.authenticate(#{private_channel}, #{socket_id})") do
    Pusher.authenticate(private_channel, socket_id)
  end,
  presence_auth: call("Pusher.authenticate(#{presence}, #{socket_id}, member)") do
    Pusher.authenticate(presence, socket_id, member)
  end,
  user_auth: call("authenticate_user(#{socket_id}, user)") do
    Pusher.default_client.authenticate_user(socket_id, user)
  end,
}
puts JSON.generate(results)
