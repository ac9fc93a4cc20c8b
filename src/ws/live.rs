//! The count of open WebSocket connections, so that shutdown can wait for
//! their close frames to go out instead of guessing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// Every socket registers here for as long as it lives.
#[derive(Clone)]
pub struct LiveConnections(Arc<watch::Sender<usize>>);

/// A socket's place in the count; dropping it takes the socket out.
pub struct Registered(Arc<watch::Sender<usize>>);

impl LiveConnections {
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }

    pub fn register(&self) -> Registered {
        self.0.send_modify(|n| *n += 1);
        Registered(self.0.clone())
    }

    pub fn count(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits until no connection is left, at most `within`; says whether
    /// none is.
    pub async fn all_ended(&self, within: Duration) -> bool {
        let mut count = self.0.subscribe();
        let ended = tokio::time::timeout(within, count.wait_for(|n| *n == 0)).await;
        ended.is_ok()
    }
}

impl Default for LiveConnections {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn waits_for_the_last_connection() {
        let live = LiveConnections::new();
        assert!(live.all_ended(Duration::ZERO).await, "nothing open");
        let (a, b) = (live.register(), live.register());
        assert_eq!(live.count(), 2);
        drop(a);
        assert!(!live.all_ended(Duration::from_millis(20)).await, "one is still open");
        let waiter = actix_web::rt::spawn({
            let live = live.clone();
            async move { live.all_ended(Duration::from_secs(10)).await }
        });
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        drop(b);
        assert!(waiter.await.unwrap(), "woken when the last one ended");
        assert_eq!(live.count(), 0);
    }
}
