<?php
// One trigger with the PHP SDK configured by php/pusher.php. Run by node/migrating.mjs through
// `pusher-php`:
//
//   pusher-php migrating/php/trigger.php LABEL

$label = $argv[1] ?? null;
if ($label === null) {
    fwrite(STDERR, "usage: trigger.php LABEL\n");
    exit(2);
}

require __DIR__ . '/pusher.php';

try {
    $pusher->trigger('orders', 'shipped', ['from' => $label]);
} catch (Pusher\ApiErrorException $e) {
    fwrite(STDERR, "trigger('orders', 'shipped', ...) failed: HTTP {$e->getCode()} {$e->getMessage()}\n");
    exit(1);
}
echo "$label: triggered\n";
