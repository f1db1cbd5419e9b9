# The seed demo's server side without Rails: the trigger from its `PusherEvent#save`, with the gem
# pointed at Herald the way the demo's initializer does it (`Pusher.url`, from PUSHER_URL).
#
#   pusher-ruby --gem 0.15.2|latest ruby/trigger_chat.rb NAME MESSAGE

require 'pusher'

name, message = ARGV
abort 'usage: trigger_chat.rb NAME MESSAGE' unless name && message

settings = %w[HERALD_HOST HERALD_PORT HERALD_APP_ID HERALD_KEY HERALD_SECRET].to_h do |var|
  [var, ENV.fetch(var) { abort "#{var} is not set" }]
end

# HERALD_TLS: https only; httpclient trusts the test CA through SSL_CERT_FILE (set by e2e.rs).
scheme = ENV['HERALD_TLS'] == '1' ? 'https' : 'http'
Pusher.url = "#{scheme}://#{settings['HERALD_KEY']}:#{settings['HERALD_SECRET']}" \
             "@#{settings['HERALD_HOST']}:#{ENV.fetch('HERALD_REST_PORT', settings['HERALD_PORT'])}/apps/#{settings['HERALD_APP_ID']}"
# httpclient's default is a 60 s receive timeout; fail well inside the scenario's own timeout.
Pusher.timeout = 10 if Pusher.respond_to?(:timeout=)

begin
  result = Pusher.trigger('test_chat_channel', 'new_message', { name: name, message: message })
rescue Pusher::Error => e
  abort "Pusher.trigger('test_chat_channel', 'new_message', ...) failed: #{e.class}: #{e.message}"
end
puts "Pusher.trigger returned #{result.inspect}"
