//! The webhook events a join or a leave causes. Called with the channel locked, so that two
//! connections joining and leaving at the same moment on different threads enqueue their events in
//! the order the channel saw them (`channel_vacated` before the next `channel_occupied`).

use pusher_wire::presence::PresenceMember;
use pusher_wire::webhook::{WebhookEvent, WebhookKind};

use super::{CacheReplay, Joined, Left};
use crate::webhooks::Webhooks;

/// `channel_occupied`, then `member_added`, `subscription_count` and `cache_miss` as they apply.
pub fn joined(hooks: &Webhooks, channel: &str, member: Option<&PresenceMember>, joined: &Joined) {
    if joined.occupied {
        hooks.emit(WebhookKind::ChannelOccupied, || WebhookEvent::ChannelOccupied { channel: channel.into() });
    }
    if let Some(member) = member.filter(|_| joined.member_added) {
        hooks.emit(WebhookKind::MemberAdded, || WebhookEvent::MemberAdded {
            channel: channel.into(),
            user_id: member.user_id.clone(),
        });
    }
    if let Some(count) = joined.count_sent {
        count_changed(hooks, channel, count);
    }
    if joined.cache == CacheReplay::Miss {
        hooks.emit(WebhookKind::CacheMiss, || WebhookEvent::CacheMiss { channel: channel.into() });
    }
}

/// `member_removed`, `subscription_count`, then `channel_vacated` as they apply.
pub fn left(hooks: &Webhooks, channel: &str, left: &Left) {
    if let Some(user_id) = &left.member_removed {
        hooks.emit(WebhookKind::MemberRemoved, || WebhookEvent::MemberRemoved {
            channel: channel.into(),
            user_id: user_id.clone(),
        });
    }
    if let Some(count) = left.count_sent {
        count_changed(hooks, channel, count);
    }
    if left.vacated {
        hooks.emit(WebhookKind::ChannelVacated, || WebhookEvent::ChannelVacated { channel: channel.into() });
    }
}

/// `subscription_count`, when an update was sent to the subscribers.
pub fn count_changed(hooks: &Webhooks, channel: &str, count: usize) {
    hooks.emit(WebhookKind::SubscriptionCount, || WebhookEvent::SubscriptionCount {
        channel: channel.into(),
        subscription_count: count,
    });
}
