<?php
// The PHP SDK (pusher/pusher-php-server) pointed at Herald, every setting from the environment
// (Laravel's names).

$pusher = new Pusher\Pusher(
    getenv('PUSHER_APP_KEY'),
    getenv('PUSHER_APP_SECRET'),
    getenv('PUSHER_APP_ID'),
    [
        'host' => getenv('PUSHER_HOST'),
        'port' => (int) getenv('PUSHER_PORT'),
        'scheme' => getenv('PUSHER_SCHEME') ?: 'https',
    ]
);
