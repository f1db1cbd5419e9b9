<?php
// What Laravel does with laravel/config/broadcasting.php when an event is broadcast, without
// Laravel: `env()` as Laravel reads .env values (the environment holds them; node/migrating.mjs
// loads laravel/.env into it), the Pusher client built as Illuminate\Broadcasting\BroadcastManager
// builds it (a Guzzle client with connect_timeout 10, timeout 30 and TLS 1.2, plus the connection's
// client_options), and the event sent as PusherBroadcaster::broadcast sends it (channels in chunks of
// 100, the `socket` entry of the payload turned into socket_id). Run through `pusher-php`:
//
//   pusher-php migrating/laravel/broadcast.php LABEL

/** Laravel's env(): the environment's value with true/false/empty/null words and quotes understood. */
function env(string $key, $default = null)
{
    $value = getenv($key);
    if ($value === false) {
        return $default;
    }
    switch (strtolower($value)) {
        case 'true':
        case '(true)':
            return true;
        case 'false':
        case '(false)':
            return false;
        case 'empty':
        case '(empty)':
            return '';
        case 'null':
        case '(null)':
            return null;
    }
    if (preg_match('/\A([\'"])(.*)\1\z/', $value, $matches)) {
        return $matches[2];
    }
    return $value;
}

$label = $argv[1] ?? null;
if ($label === null) {
    fwrite(STDERR, "usage: broadcast.php LABEL\n");
    exit(2);
}

$config = require __DIR__ . '/config/broadcasting.php';
if ($config['default'] !== 'pusher') {
    fwrite(STDERR, "BROADCAST_CONNECTION is " . var_export($config['default'], true) . ", not 'pusher'\n");
    exit(1);
}
$connection = $config['connections'][$config['default']];
if ($connection['driver'] !== 'pusher') {
    fwrite(STDERR, "the default connection's driver is {$connection['driver']}, not pusher\n");
    exit(1);
}

// BroadcastManager::pusher()
$guzzle = new GuzzleHttp\Client(array_merge(
    ['connect_timeout' => 10, 'crypto_method' => STREAM_CRYPTO_METHOD_TLSv1_2_CLIENT, 'timeout' => 30],
    $connection['client_options'] ?? [],
));
$pusher = new Pusher\Pusher(
    $connection['key'],
    $connection['secret'],
    $connection['app_id'],
    $connection['options'] ?? [],
    $guzzle,
);

// PusherBroadcaster::broadcast() for `OrderShipped implements ShouldBroadcast` on Channel('orders')
// (its public properties are the payload; InteractsWithSockets adds `socket`, null outside a request).
$channels = ['orders'];
$event = 'App\\Events\\OrderShipped';
$payload = ['from' => $label, 'socket' => null];
$socket = $payload['socket'];
unset($payload['socket']);
$parameters = $socket !== null ? ['socket_id' => $socket] : [];
try {
    foreach (array_chunk($channels, 100) as $chunk) {
        $pusher->trigger($chunk, $event, $payload, $parameters);
    }
} catch (Pusher\ApiErrorException $e) {
    fwrite(STDERR, "Pusher error: {$e->getMessage()} (HTTP {$e->getCode()})\n");
    exit(1);
}
echo "$label: broadcast $event on orders through {$connection['options']['scheme']}://{$connection['options']['host']}:{$connection['options']['port']}\n";
