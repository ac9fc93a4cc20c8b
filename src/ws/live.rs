//! The open WebSocket connections: how many in all and per client address,
//! capped so that no one client can take every file descriptor, and counted
//! so that shutdown can wait for their close frames to go out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// Every socket holds a place here for as long as it lives.
#[derive(Clone)]
pub struct LiveConnections(Arc<Shared>);

struct Shared {
    count: watch::Sender<usize>,
    /// Bytes waiting in every socket's write buffer, as last reported.
    buffered: AtomicUsize,
    per_address: Mutex<HashMap<u64, u32>>,
    max_total: usize,
    /// 0: no cap per address.
    max_per_address: u32,
}

/// A connection's place in the count; dropping it gives the place back.
pub struct Registered {
    shared: Arc<Shared>,
    address: Option<u64>,
    /// This socket's share of `Shared::buffered`.
    buffered: usize,
}

/// Why a connection was not let in.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `--max-connections` are open.
    Full,
    /// The client's address (IPv6: its /64) has its share open.
    AddressFull,
}

impl LiveConnections {
    pub fn new(max_total: usize, max_per_address: u32) -> Self {
        Self(Arc::new(Shared {
            count: watch::channel(0).0,
            buffered: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            max_total,
            max_per_address,
        }))
    }

    /// A place for a connection from `client`, unless a cap is reached.
    pub fn register(&self, client: Option<IpAddr>) -> Result<Registered, Refused> {
        let shared = &self.0;
        let mut full = false;
        shared.count.send_if_modified(|n| {
            full = *n >= shared.max_total;
            *n += usize::from(!full);
            !full
        });
        if full {
            return Err(Refused::Full);
        }
        // From here on the place is held: dropping it gives it back.
        let mut place = Registered { shared: shared.clone(), address: None, buffered: 0 };
        if let (Some(ip), true) = (client, shared.max_per_address > 0) {
            let address = address_key(ip);
            let mut open = shared.per_address.lock().expect("connection count lock");
            let here = open.entry(address).or_default();
            if *here >= shared.max_per_address {
                return Err(Refused::AddressFull);
            }
            *here += 1;
            place.address = Some(address);
        }
        Ok(place)
    }

    pub fn count(&self) -> usize {
        *self.0.count.borrow()
    }

    /// Bytes waiting to be written to clients, over every socket.
    pub fn buffered_bytes(&self) -> usize {
        self.0.buffered.load(Ordering::Relaxed)
    }

    /// Waits until no connection is left, at most `within`; says whether
    /// none is.
    pub async fn all_ended(&self, within: Duration) -> bool {
        let mut count = self.0.count.subscribe();
        let ended = tokio::time::timeout(within, count.wait_for(|n| *n == 0)).await;
        ended.is_ok()
    }
}

impl Registered {
    /// The socket's write buffer now holds `bytes`. Sockets that keep up
    /// report 0 every time and touch nothing shared.
    pub fn report_buffered(&mut self, bytes: usize) {
        if bytes > self.buffered {
            self.shared.buffered.fetch_add(bytes - self.buffered, Ordering::Relaxed);
        } else if bytes < self.buffered {
            self.shared.buffered.fetch_sub(self.buffered - bytes, Ordering::Relaxed);
        }
        self.buffered = bytes;
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.report_buffered(0);
        if let Some(address) = self.address {
            let mut open = self.shared.per_address.lock().expect("connection count lock");
            if let Some(here) = open.get_mut(&address) {
                *here -= 1;
                if *here == 0 {
                    open.remove(&address);
                }
            }
        }
        self.shared.count.send_modify(|n| *n -= 1);
    }
}

/// One client as the caps see it: an IPv4 address, or an IPv6 /64 (one
/// subscriber's network, however many addresses it hands out).
fn address_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => 0xffff_ffff_0000_0000 | u64::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => address_key(IpAddr::V4(v4)),
            None => (u128::from(v6) >> 64) as u64,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[actix_web::test]
    async fn waits_for_the_last_connection() {
        let live = LiveConnections::new(100, 0);
        assert!(live.all_ended(Duration::ZERO).await, "nothing open");
        let (a, b) = (live.register(None).unwrap(), live.register(None).unwrap());
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

    #[test]
    fn caps_in_all_and_per_address_with_places_given_back() {
        let live = LiveConnections::new(4, 2);
        let first = live.register(ip("10.0.0.1")).unwrap();
        let _second = live.register(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(live.register(ip("10.0.0.1")).err(), Some(Refused::AddressFull), "the same IPv4 address");
        let _v6 = live.register(ip("2001:db8:1:2::1")).unwrap();
        let _v6b = live.register(ip("2001:db8:1:2::ffff")).unwrap();
        assert_eq!(live.count(), 4);
        assert_eq!(live.register(ip("10.0.0.9")).err(), Some(Refused::Full));
        drop(first);
        assert_eq!(live.register(ip("2001:db8:1:2::7")).err(), Some(Refused::AddressFull), "one /64");
        let (mut slow, mut slower) = (live.register(None).unwrap(), _v6);
        slow.report_buffered(100);
        slower.report_buffered(50);
        slow.report_buffered(30);
        assert_eq!(live.buffered_bytes(), 80);
        drop(slower);
        assert_eq!(live.buffered_bytes(), 30, "a closed socket's bytes are gone");
        assert!(live.register(ip("10.0.0.1")).is_ok(), "a place was given back");
    }
}
