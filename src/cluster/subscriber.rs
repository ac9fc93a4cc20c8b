//! The node's one subscription: every message and event of the cluster.
//! When the connection drops it reconnects with backoff; whatever was
//! published meanwhile is in the streams, and `News::Resubscribed` has the
//! ChatServer fill its rooms from there.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::StreamExt;

use super::wire::{self, Event, WireMessage};
use super::{bus, presence};
use super::{Inner, News, RESPONSE_TIMEOUT};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(2);

/// Events this long before the subscription broke are read again on
/// resubscribing: some may have been on their way when it broke.
const REPLAY_SLACK_MS: i64 = 2_000;

pub(super) fn spawn(inner: Arc<Inner>, news: Recipient<News>) {
    actix::spawn(async move {
        let mut wait = FIRST_RETRY;
        // When the last subscription broke.
        let mut lost_at = None;
        loop {
            match listen(&inner, &news, lost_at).await {
                Ok(()) => {
                    log::warn!("redis: the subscription ended; subscribing again");
                    lost_at = Some(crate::clock::now_ms());
                    wait = FIRST_RETRY;
                }
                Err(e) => crate::warn_throttled!("redis: cannot subscribe ({e}); trying again in {wait:?}"),
            }
            actix_web::rt::time::sleep(wait).await;
            wait = (wait * 2).min(LAST_RETRY);
        }
    });
}

/// Subscribes and passes on what arrives until the connection ends; first
/// the decisions and message changes published since `lost_at`, which the
/// subscription did not hear.
async fn listen(inner: &Inner, news: &Recipient<News>, lost_at: Option<i64>) -> redis::RedisResult<()> {
    let connect = inner.client.get_async_pubsub();
    let mut pubsub = actix_web::rt::time::timeout(RESPONSE_TIMEOUT, connect)
        .await
        .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    let (messages, events) = (inner.keys.messages_channel(), inner.keys.events_channel());
    pubsub.subscribe(&[&messages, &events]).await?;
    log::info!("redis: subscribed");
    if let Err(e) = bus::check_restart(inner).await {
        crate::warn_throttled!("redis: cannot tell whether it restarted: {e}");
    }
    news.do_send(News::Resubscribed);
    if let Some(lost_at) = lost_at {
        // Carrying one out twice does no harm: each means the same again.
        replay_events(inner, news, lost_at - REPLAY_SLACK_MS).await?;
    }
    // Read after subscribing: no change falls between the two.
    presence::send_roster(inner, news).await;
    let mut stream = pubsub.on_message();
    let mine = wire::node_field(&inner.settings.node);
    while let Some(msg) = stream.next().await {
        let payload = msg.get_payload_bytes();
        if msg.get_channel_name() == messages {
            if wire::is_from(payload, &mine) {
                // This node has it already: the send script's answer.
                continue;
            }
            match WireMessage::decode(payload).and_then(|w| inner.delivery(w)) {
                Ok(delivery) => news.do_send(News::Arrived(delivery)),
                Err(e) => crate::warn_throttled!("redis: {e}"),
            }
        } else {
            match Event::decode(payload) {
                Ok(event) => news.do_send(News::Event(event)),
                Err(e) => crate::warn_throttled!("redis: {e}"),
            }
        }
    }
    Ok(())
}

/// Passes on the events of the events log from `since_ms` on.
async fn replay_events(inner: &Inner, news: &Recipient<News>, since_ms: i64) -> redis::RedisResult<()> {
    use redis::AsyncCommands;
    let mut redis = inner.redis.clone();
    let reply: redis::streams::StreamRangeReply =
        redis.xrange(inner.keys.events_log(), format!("{}-0", since_ms.max(0)), "+").await?;
    for entry in reply.ids {
        let Some(redis::Value::BulkString(raw)) = entry.map.get("e") else { continue };
        match Event::decode(raw) {
            Ok(event) => news.do_send(News::Event(event)),
            Err(e) => crate::warn_throttled!("redis: {e}"),
        }
    }
    Ok(())
}
