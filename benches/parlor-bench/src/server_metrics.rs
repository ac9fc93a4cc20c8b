//! The server's own counters (`GET /metrics`, open to a client on the same
//! machine), read before and after each load so that a report shows whether
//! the server and the generator agree on what happened.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{get, http};

/// What the server counted during one load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerCounts {
    pub accepted: f64,
    pub refused: f64,
    /// Frames the server handed its sessions (messages, and any presence).
    pub deliveries: f64,
    pub slow_consumers: f64,
    pub commits: f64,
}

/// Every sample of the exposition, by its name and labels.
pub type Samples = BTreeMap<String, f64>;

/// Reads `/metrics`; `None` when the server does not serve it to us.
pub async fn scrape(server: SocketAddr) -> Option<Samples> {
    let request = get("/metrics");
    let (status, head, body) =
        tokio::time::timeout(Duration::from_secs(5), http(server, None, &request)).await.ok()?.ok()?;
    if status != 200 || head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return None;
    }
    Some(parse(&body))
}

/// Reads every node's `/metrics` and adds them up; `None` unless all answer.
pub async fn scrape_all(servers: &[SocketAddr]) -> Option<Samples> {
    let mut total = Samples::new();
    for server in servers {
        for (name, value) in scrape(*server).await? {
            *total.entry(name).or_default() += value;
        }
    }
    Some(total)
}

pub fn parse(exposition: &str) -> Samples {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

impl ServerCounts {
    pub fn between(before: &Samples, after: &Samples) -> Self {
        let delta = |name: &str| after.get(name).unwrap_or(&0.0) - before.get(name).unwrap_or(&0.0);
        let refused: f64 = after
            .iter()
            .filter(|(name, _)| name.starts_with("parlor_messages_refused_total"))
            .map(|(name, value)| value - before.get(name).unwrap_or(&0.0))
            .fold(0.0, |sum, n| sum + n);
        Self {
            accepted: delta("parlor_messages_accepted_total"),
            refused,
            deliveries: delta("parlor_deliveries_total"),
            slow_consumers: delta("parlor_slow_consumers_total"),
            commits: delta("parlor_commit_seconds_count"),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "accepted": self.accepted,
            "refused": self.refused,
            "deliveries": self.deliveries,
            "slow_consumers": self.slow_consumers,
            "commits": self.commits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_the_difference_of_two_scrapes() {
        let before = parse("# HELP x\nparlor_messages_accepted_total 10\nparlor_deliveries_total 100\n");
        let after = parse(
            "parlor_messages_accepted_total 15\nparlor_deliveries_total 600\n\
             parlor_messages_refused_total{reason=\"rate_limited\"} 2\nparlor_commit_seconds_count 3\n",
        );
        let counts = ServerCounts::between(&before, &after);
        assert_eq!(
            counts,
            ServerCounts { accepted: 5.0, refused: 2.0, deliveries: 500.0, slow_consumers: 0.0, commits: 3.0 }
        );
    }
}
