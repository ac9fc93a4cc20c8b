//! Token buckets: the limits on how fast one connection sends and one
//! account or address tries to log in.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clock::now_ms;

/// Allows `burst` sends at once and `rate` per second after that.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst: burst.max(1.0), tokens: burst.max(1.0), at: Instant::now() }
    }

    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One bucket per key (an account, an address), forgetting keys whose
/// bucket has been full for a while so the map cannot grow without bound.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst, buckets: Mutex::new(HashMap::new()) }
    }

    /// Its rate (tokens a second) and burst.
    pub fn allowance(&self) -> (f64, f64) {
        (self.rate, self.burst)
    }

    /// Takes a token for `key`; false when its bucket is empty.
    pub fn take(&self, key: &K, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().expect("limiter lock");
        if buckets.len() > 10_000 {
            let refill = Duration::from_secs_f64(self.burst / self.rate.max(f64::MIN_POSITIVE));
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < refill);
        }
        buckets.entry(key.clone()).or_insert_with(|| TokenBucket::new(self.rate, self.burst)).take(now)
    }
}

/// Lets a log line through at most once a second, counting what it held
/// back meanwhile: a thousand connections failing the same way make one
/// line a second, not a thousand.
pub struct LogThrottle {
    next_ms: AtomicI64,
    held: AtomicU64,
}

impl LogThrottle {
    pub const fn new() -> Self {
        Self { next_ms: AtomicI64::new(0), held: AtomicU64::new(0) }
    }

    /// `Some(n)`: log now, saying that `n` more like it were held back since
    /// the last line; `None`: hold this one back.
    pub fn admit(&self) -> Option<u64> {
        let now = now_ms();
        let next = self.next_ms.load(Ordering::Relaxed);
        if now < next || self.next_ms.compare_exchange(next, now + 1000, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new()
    }
}

/// A warning through a `LogThrottle` (a `static` at the call site).
#[macro_export]
macro_rules! warn_throttled {
    ($($arg:tt)+) => {{
        static THROTTLE: $crate::rate_limit::LogThrottle = $crate::rate_limit::LogThrottle::new();
        if let Some(held) = THROTTLE.admit() {
            if held > 0 {
                log::warn!("{} ({held} more like it in the last second)", format_args!($($arg)+));
            } else {
                log::warn!($($arg)+);
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::{KeyedLimiter, LogThrottle, TokenBucket};

    #[test]
    fn throttled_logs_let_one_through_and_count_the_rest() {
        let throttle = LogThrottle::new();
        assert_eq!(throttle.admit(), Some(0));
        assert_eq!((0..999).filter_map(|_| throttle.admit()).count(), 0, "held back within the second");
        throttle.next_ms.store(0, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(throttle.admit(), Some(999), "the next line says how many were held back");
    }
    use std::time::{Duration, Instant};

    #[test]
    fn bucket_allows_burst_then_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3.0);
        assert!((0..3).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        assert!(bucket.take(start + Duration::from_millis(500)));
        assert!(!bucket.take(start + Duration::from_millis(600)));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let mut bucket = TokenBucket::new(0.0, 1.0);
        assert!((0..1000).all(|_| bucket.take(Instant::now())));
    }

    #[test]
    fn keyed_buckets_are_separate() {
        let now = Instant::now();
        let limiter = KeyedLimiter::new(1.0, 2.0);
        assert!(limiter.take(&"a", now) && limiter.take(&"a", now));
        assert!(!limiter.take(&"a", now));
        assert!(limiter.take(&"b", now), "another key has its own bucket");
    }
}
