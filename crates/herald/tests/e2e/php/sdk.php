<?php
// Call the official PHP SDK (pusher/pusher-php-server, what Laravel's `pusher` broadcaster uses)
// against Herald, for node/php_sdk.mjs and node/php_sdk_users.mjs. Run through `pusher-php` (see
// runPhp in lib/harness.mjs), which makes `Pusher\Pusher` loadable.
//
// Reads one JSON object on stdin:
//
//   {"client": {"secret": "...", "app_id": "...", "encryption_master_key_base64": "..."},
//    "calls": [{"call": "trigger", "args": ["news", "created", {"id": 1}]}, ...]}
//
// `client` is optional: each setting in it replaces the one from the environment (a wrong secret,
// an unknown app id, an encryption master key). Each call is a public method of `Pusher\Pusher`,
// its arguments decoded as PHP apps write them (JSON objects become associative arrays). Prints one
// JSON list on the last line of stdout, one entry per call:
//
//   {"result": <what the method returned>}      (a Pusher\Webhook as {"time_ms", "events"})
//   {"error": {"class": "Pusher\\ApiErrorException", "status": 401, "message": "<body>"}}
//
// An exception is an answer, not a failure of this script: the Node side decides which calls had
// to succeed. Anything else (bad input, a call not listed below) exits non-zero.

const CALLS = [
    'trigger', 'triggerBatch', 'sendToUser', 'terminateUserConnections',
    'getChannelInfo', 'getChannels', 'getPresenceUsers',
    'authorizeChannel', 'authorizePresenceChannel', 'authenticateUser',
    'webhook',
];

function setting(string $name): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        fwrite(STDERR, "$name is not set\n");
        exit(2);
    }
    return $value;
}

$request = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$client = $request['client'] ?? [];

$options = [
    'host' => setting('HERALD_HOST'),
    // The server SDKs talk to HERALD_REST_PORT: another node than the WebSocket clients' in a cluster.
    'port' => (int) (getenv('HERALD_REST_PORT') ?: setting('HERALD_PORT')),
    'scheme' => 'http',
    'useTLS' => false,
    // Guzzle's default is 30 s; fail well inside the scenario's own timeout.
    'timeout' => 10,
];
if (isset($client['encryption_master_key_base64'])) {
    $options['encryption_master_key_base64'] = $client['encryption_master_key_base64'];
}
$pusher = new Pusher\Pusher(
    $client['key'] ?? setting('HERALD_KEY'),
    $client['secret'] ?? setting('HERALD_SECRET'),
    $client['app_id'] ?? setting('HERALD_APP_ID'),
    $options
);

$results = [];
foreach ($request['calls'] as $call) {
    $name = $call['call'];
    $args = $call['args'] ?? [];
    if (!in_array($name, CALLS, true)) {
        fwrite(STDERR, "call not allowed: $name\n");
        exit(2);
    }
    $shown = $name . '(' . substr(substr(json_encode($args, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), 1, -1), 0, 200) . ')';
    try {
        $result = $pusher->$name(...$args);
        if ($result instanceof Pusher\Webhook) {
            $result = ['time_ms' => $result->get_time_ms(), 'events' => $result->get_events()];
        }
        $results[] = ['result' => $result];
        fwrite(STDERR, "$shown -> " . json_encode($result, JSON_UNESCAPED_SLASHES) . "\n");
    } catch (Throwable $error) {
        $results[] = ['error' => [
            'class' => get_class($error),
            'status' => $error->getCode(),
            'message' => $error->getMessage(),
        ]];
        fwrite(STDERR, "$shown threw " . get_class($error) . ' (code ' . $error->getCode() . '): ' . $error->getMessage() . "\n");
    }
}
echo json_encode($results, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES), "\n";
