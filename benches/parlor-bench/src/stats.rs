//! Latency histogram, clocks and the CPU and memory readings of processes.

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds since the generator started; every timestamp in a message
/// text is on this clock, and only this process reads them.
pub fn now_ns() -> u64 {
    ns_at(Instant::now())
}

/// `at` on the `now_ns` clock.
pub fn ns_at(at: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    at.saturating_duration_since(*EPOCH.get_or_init(Instant::now)).as_nanos() as u64
}

/// Latencies at microsecond resolution up to one second (exact
/// percentiles, no sampling); anything slower lands in the last bucket and
/// still counts toward the exact maximum.
pub struct Histogram {
    counts: Vec<u32>,
    total: u64,
    max_ns: u64,
}

const BUCKETS: usize = 1_000_000;

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS], total: 0, max_ns: 0 }
    }
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        let bucket = ((ns / 1_000) as usize).min(BUCKETS - 1);
        self.counts[bucket] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The upper bound of the bucket holding quantile `q`, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                let upper_ns = (bucket as u64 + 1) * 1_000;
                return upper_ns.min(self.max_ns) as f64 / 1e6;
            }
        }
        self.max_ns as f64 / 1e6
    }

    pub fn max_ms(&self) -> f64 {
        self.max_ns as f64 / 1e6
    }
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields resume after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / per_second.max(1) as f64)
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

/// A number from `/proc/<pid>/status` (`VmRSS:` in KiB, `Threads:`).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds all of `pids` have used so far; `None` unless every one of
/// them is readable (and there is at least one).
pub fn total_cpu_seconds(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| cpu_seconds(*pid)).sum()
}

/// What the processes a run watches are: the server (one node, or every
/// node of a cluster, summed), and Redis when the cluster has one.
#[derive(Clone, Debug, Default)]
pub struct Watched {
    pub servers: Vec<u32>,
    pub redis: Option<u32>,
}

/// CPU used by the generator, the server and Redis (when their pids are
/// known) over a stretch of time, as a fraction of one core.
pub struct CpuMeter {
    watched: Watched,
    started: Instant,
    own: f64,
    server_start: Option<f64>,
    redis_start: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub wall_seconds: f64,
    pub generator: f64,
    pub server: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
    pub redis: Option<f64>,
}

impl CpuMeter {
    pub fn start(watched: &Watched) -> CpuMeter {
        CpuMeter {
            watched: watched.clone(),
            started: Instant::now(),
            own: cpu_seconds(std::process::id()).unwrap_or(0.0),
            server_start: total_cpu_seconds(&watched.servers),
            redis_start: watched.redis.and_then(cpu_seconds),
        }
    }

    pub fn read(&self) -> CpuUse {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let own = cpu_seconds(std::process::id()).unwrap_or(0.0) - self.own;
        let server_cpu = match (total_cpu_seconds(&self.watched.servers), self.server_start) {
            (Some(now), Some(then)) => Some(now - then),
            _ => None,
        };
        let redis_cpu = match (self.watched.redis.and_then(cpu_seconds), self.redis_start) {
            (Some(now), Some(then)) => Some(now - then),
            _ => None,
        };
        CpuUse {
            wall_seconds: wall,
            generator: own / wall,
            server: server_cpu.map(|s| s / wall),
            server_cpu_seconds: server_cpu,
            redis: redis_cpu.map(|s| s / wall),
        }
    }
}

/// Connections that could not be made: how many, and the first reason
/// (the rest are usually the same).
#[derive(Default)]
pub struct Failures {
    count: std::cell::Cell<u64>,
    first: std::cell::RefCell<Option<String>>,
}

impl Failures {
    pub fn note(&self, e: &std::io::Error) {
        self.count.set(self.count.get() + 1);
        self.first.borrow_mut().get_or_insert_with(|| e.to_string());
    }

    pub fn count(&self) -> u64 {
        self.count.get()
    }

    pub fn first(&self) -> Option<String> {
        self.first.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn quantiles_come_from_the_recorded_values() {
        let mut h = Histogram::default();
        for us in 1..=100u64 {
            h.record(us * 1_000 - 500);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile_ms(0.5), 0.05);
        assert_eq!(h.quantile_ms(0.99), 0.099);
        assert_eq!(h.max_ms(), 0.0995);
    }

    #[test]
    fn own_process_cpu_is_readable() {
        assert!(super::cpu_seconds(std::process::id()).is_some());
        assert!(super::rss_kib(std::process::id()).unwrap() > 0);
    }
}
