# What a Rails app does once the gem is configured: one trigger, here from a plain Ruby process.
# Run by node/migrating.mjs through `pusher-ruby` (which has already required the gem):
#
#   pusher-ruby --gem 0.15.2|latest migrating/rails/trigger.rb LABEL url|initializer
#
# `url`: nothing but PUSHER_URL in the environment (both gem versions read it by themselves).
# `initializer`: config/initializers/pusher.rb, as Rails would load it.

label, how = ARGV
abort 'usage: trigger.rb LABEL url|initializer' unless label && %w[url initializer].include?(how)

require_relative 'config/initializers/pusher' if how == 'initializer'
# httpclient waits 60 s by default; fail well inside the scenario's own timeout.
Pusher.timeout = 10 if Pusher.respond_to?(:timeout=)

begin
  Pusher.trigger('orders', 'shipped', { from: label })
rescue Pusher::Error => e
  abort "Pusher.trigger('orders', 'shipped', ...) to #{Pusher.url} failed: #{e.class}: #{e.message}"
end
puts "#{label}: triggered through #{Pusher.url}"
