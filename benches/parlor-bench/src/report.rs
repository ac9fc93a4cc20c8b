//! Results as a table for people, one JSON line for scripts, and an SVG of
//! latency against load.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::attacks::LoginFloodReport;
use crate::conns::ConnsReport;
use crate::load::{Pace, Step};
use crate::stats::CpuUse;

fn pace_label(pace: Pace) -> String {
    match pace {
        Pace::Rate { per_sec } => format!("{per_sec}/s"),
        Pace::Window { window } => format!("window {window}"),
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or("-".into(), |s| format!("{:.0}%", s * 100.0))
}

pub fn steps_table(steps: &[Step]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>9} {:>7} {:>11} {:>11} {:>6} {:>11} {:>7} {:>7} {:>7} {:>8} {:>7} {:>5} {:>5} {:>7} {:>6} {:>11}  errors",
        "load",
        "sent",
        "refused",
        "expected",
        "received",
        "loss",
        "deliv/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "lag p99",
        "disc",
        "gen",
        "server",
        "redis",
        "server/dlv"
    );
    for s in steps {
        let mut errors: Vec<String> = s.errors.iter().map(|(code, n)| format!("{code}={n}")).collect();
        if s.duplicates > 0 {
            errors.push(format!("duplicates={}", s.duplicates));
        }
        let _ = writeln!(
            out,
            "{:>12} {:>9} {:>7} {:>11} {:>11} {:>6} {:>11.0} {:>7.3} {:>7.3} {:>7.3} {:>8.3} {:>7.3} {:>5} {:>5} {:>7} {:>6} {:>11}  {}",
            pace_label(s.pace),
            s.sent,
            s.refused,
            s.expected,
            s.received,
            s.loss(),
            s.deliveries_per_sec,
            s.p50_ms,
            s.p90_ms,
            s.p99_ms,
            s.max_ms,
            s.send_lag_p99_ms,
            s.disconnects,
            percent(Some(s.cpu.generator)),
            percent(s.cpu.server),
            percent(s.cpu.redis),
            s.server_us_per_delivery().map_or("-".into(), |us| format!("{:.3} us", us)),
            if errors.is_empty() { "-".into() } else { errors.join(" ") },
        );
    }
    out
}

fn cpu_json(cpu: &CpuUse) -> Value {
    json!({
        "wall_seconds": cpu.wall_seconds,
        "generator_core_share": cpu.generator,
        "server_core_share": cpu.server,
        "server_cpu_seconds": cpu.server_cpu_seconds,
        "redis_core_share": cpu.redis,
    })
}

/// The server's own counts of a load beside the generator's, when the
/// server let us read them; nothing otherwise.
pub fn server_counts(s: &Step) -> String {
    let Some(server) = &s.server else { return String::new() };
    format!(
        "{:>12} server counted: accepted {:.0} (generator sent {}, refused {}), refused {:.0}, deliveries {:.0} \
         (generator received {}), slow consumers {:.0}, commits {:.0}\n",
        pace_label(s.pace),
        server.accepted,
        s.sent,
        s.refused,
        server.refused,
        server.deliveries,
        s.received,
        server.slow_consumers,
        server.commits,
    )
}

pub fn step_json(s: &Step) -> Value {
    let (rate, window) = match s.pace {
        Pace::Rate { per_sec } => (Some(per_sec), None),
        Pace::Window { window } => (None, Some(window)),
    };
    json!({
        "rate_per_sender": rate,
        "window": window,
        "seconds": s.seconds,
        "sent": s.sent,
        "refused": s.refused,
        "deliveries_expected": s.expected,
        "deliveries_received": s.received,
        "loss": s.loss(),
        "deliveries_per_sec": s.deliveries_per_sec,
        "duplicates": s.duplicates,
        "server_counted": s.server.as_ref().map(|c| c.json()),
        "latency_ms": {"p50": s.p50_ms, "p90": s.p90_ms, "p99": s.p99_ms, "max": s.max_ms},
        "send_lag_p99_ms": s.send_lag_p99_ms,
        "errors": s.errors,
        "disconnects": s.disconnects,
        "cpu": cpu_json(&s.cpu),
        "server_us_per_delivery": s.server_us_per_delivery(),
    })
}

pub fn conns_table(r: &ConnsReport) -> String {
    let mut out = String::new();
    let kib = |v: Option<u64>| v.map_or("-".into(), |v| format!("{v} KiB"));
    let _ = writeln!(out, "connections   {} of {} ({} failed)", r.connected, r.attempted, r.failures);
    if let Some(e) = &r.first_failure {
        let _ = writeln!(out, "first failure {e}");
    }
    let _ = writeln!(out, "connect rate  {:.0}/s ({:.2} s in all)", r.connects_per_sec, r.connect_seconds);
    let _ = writeln!(out, "dropped       {} while held", r.dropped);
    let _ = writeln!(out, "server RSS    {} before, {} after", kib(r.rss_before_kib), kib(r.rss_after_kib));
    let per = r.rss_per_connection_kib().map_or("-".into(), |v| format!("{v:.2} KiB"));
    let _ = writeln!(out, "per conn      {per}");
    let _ =
        writeln!(out, "cpu           generator {}, server {}", percent(Some(r.cpu.generator)), percent(r.cpu.server));
    let health = r.health_ms.map_or("no answer within 10 s".into(), |ms| format!("{ms:.1} ms"));
    let _ = writeln!(out, "/healthz      {health} while they were held");
    out
}

pub fn conns_json(r: &ConnsReport) -> Value {
    json!({
        "attempted": r.attempted,
        "connected": r.connected,
        "failures": r.failures,
        "first_failure": r.first_failure,
        "connect_seconds": r.connect_seconds,
        "connects_per_sec": r.connects_per_sec,
        "dropped": r.dropped,
        "server_rss_before_kib": r.rss_before_kib,
        "server_rss_after_kib": r.rss_after_kib,
        "server_rss_per_connection_kib": r.rss_per_connection_kib(),
        "cpu": cpu_json(&r.cpu),
        "health_ms": r.health_ms,
    })
}

pub fn login_flood_table(r: &LoginFloodReport) -> String {
    let mut out = String::new();
    let mib = |v: Option<u64>| v.map_or("-".into(), |v| format!("{:.1} MiB", v as f64 / 1024.0));
    let answers: Vec<String> = r.statuses.iter().map(|(status, n)| format!("{n} x {status}")).collect();
    let _ = writeln!(out, "logins        {} at once, answered in {:.2} s", r.attempts, r.seconds);
    let _ = writeln!(out, "answers       {} ({} with Retry-After)", answers.join(", "), r.with_retry_after);
    let _ = writeln!(
        out,
        "server RSS    {} before, {} at most, {} after",
        mib(r.rss_before_kib),
        mib(r.rss_peak_kib),
        mib(r.rss_after_kib)
    );
    let _ = writeln!(out, "threads       {} at most", r.threads_peak.map_or("-".into(), |t| t.to_string()));
    let _ = writeln!(
        out,
        "/healthz      p50 {:.1} ms, max {:.1} ms over {} checks during the flood",
        r.health_p50_ms, r.health_max_ms, r.health_checks
    );
    out
}

pub fn login_flood_json(r: &LoginFloodReport) -> Value {
    json!({
        "attempts": r.attempts,
        "statuses": r.statuses.iter().map(|(status, n)| (status.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "with_retry_after": r.with_retry_after,
        "seconds": r.seconds,
        "server_rss_before_kib": r.rss_before_kib,
        "server_rss_peak_kib": r.rss_peak_kib,
        "server_rss_after_kib": r.rss_after_kib,
        "server_threads_peak": r.threads_peak,
        "health_p50_ms": r.health_p50_ms,
        "health_max_ms": r.health_max_ms,
        "health_checks": r.health_checks,
    })
}

/// Latency percentiles (log scale) against deliveries per second.
pub fn latency_svg(title: &str, steps: &[Step]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 420.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;
    let max_x = steps.iter().map(|s| s.deliveries_per_sec).fold(1.0, f64::max) * 1.05;
    let lowest = steps.iter().map(|s| s.p50_ms).filter(|v| *v > 0.0).fold(f64::MAX, f64::min);
    let highest = steps.iter().map(|s| s.max_ms).fold(0.0, f64::max);
    let min_exp = if lowest == f64::MAX { -2.0 } else { lowest.log10().floor() };
    let max_exp = highest.max(10f64.powf(min_exp + 1.0)).log10().ceil();
    let x = |v: f64| LEFT + v / max_x * (W - LEFT - RIGHT);
    let y = |ms: f64| {
        let e = ms.max(10f64.powf(min_exp)).log10();
        TOP + (max_exp - e) / (max_exp - min_exp) * (H - TOP - BOTTOM)
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ =
        writeln!(svg, r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#, W / 2.0, escape(title));
    for e in (min_exp as i32)..=(max_exp as i32) {
        let v = 10f64.powi(e);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y0:.1}" y2="{y0:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{} ms</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            trim(v),
            y0 = y(v),
        );
    }
    for i in 0..=5 {
        let v = max_x * f64::from(i) / 5.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{x0:.1}" x2="{x0:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{x0:.1}" y="{}" text-anchor="middle">{}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 18.0,
            si(v),
            x0 = x(v),
        );
    }
    let _ =
        writeln!(svg, r#"<text x="{}" y="{}" text-anchor="middle">deliveries per second</text>"#, W / 2.0, H - 10.0);
    type Series = (&'static str, &'static str, fn(&Step) -> f64);
    let series: [Series; 4] = [
        ("p50", "#1b9e77", |s| s.p50_ms),
        ("p90", "#7570b3", |s| s.p90_ms),
        ("p99", "#d95f02", |s| s.p99_ms),
        ("max", "#999999", |s| s.max_ms),
    ];
    for (i, (name, colour, value)) in series.iter().enumerate() {
        let points: Vec<String> =
            steps.iter().map(|s| format!("{:.1},{:.1}", x(s.deliveries_per_sec), y(value(s)))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            points.join(" ")
        );
        for p in &points {
            let (px, py) = p.split_once(',').expect("formatted above");
            let _ = writeln!(svg, r#"<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>"#);
        }
        let lx = LEFT + 10.0 + 60.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="{}" width="12" height="3" fill="{colour}"/><text x="{}" y="{}">{name}</text>"#,
            TOP + 4.0,
            lx + 16.0,
            TOP + 9.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim((v / 1e3).round()))
    } else {
        trim(v.round())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Markdown summary of JSON lines (one per run), as the README shows it.
pub fn summary(lines: &[Value]) -> String {
    let mut out = String::new();
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let pct = |v: &Value| v.as_f64().map_or("-".into(), |s| format!("{:.0}%", s * 100.0));
    let _ = writeln!(
        out,
        "| scenario | load | deliveries/s | lost | disconnects | p50 ms | p99 ms | max ms | server CPU | server µs/delivery | generator CPU | generator lag p99 ms |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut costs = Vec::new();
    for line in lines {
        let mode = line["mode"].as_str().unwrap_or_default();
        let label = line["label"].as_str().unwrap_or(mode);
        let config = &line["config"];
        let steps: Vec<&Value> = match mode {
            "saturate" if !line["best"].is_null() => vec![&line["best"]],
            "fanout" | "saturate" => line["steps"].as_array().map(|s| s.iter().collect()).unwrap_or_default(),
            _ => continue,
        };
        for step in steps {
            let pace = match step["window"].as_u64() {
                Some(w) => format!("window {w}"),
                None => format!("{}/s each", f(&step["rate_per_sender"])),
            };
            let load = format!(
                "{} x {} members, {} senders/room, {pace}",
                config["rooms"], config["members"], config["senders_per_room"]
            );
            let (lost, disconnects) = (&step["loss"], &step["disconnects"]);
            let cost = step["server_us_per_delivery"].as_f64();
            if label.starts_with("cost-") {
                costs.push((config["members"].as_u64().unwrap_or(0), cost.unwrap_or(f64::NAN)));
            }
            let _ = writeln!(
                out,
                "| {label} | {load} | {:.0} | {lost} | {disconnects} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {:.2} |",
                f(&step["deliveries_per_sec"]),
                f(&step["latency_ms"]["p50"]),
                f(&step["latency_ms"]["p99"]),
                f(&step["latency_ms"]["max"]),
                pct(&step["cpu"]["server_core_share"]),
                cost.map_or("-".into(), |c| format!("{c:.2}")),
                pct(&step["cpu"]["generator_core_share"]),
                f(&step["send_lag_p99_ms"]),
            );
        }
    }
    if costs.len() > 1 {
        let (lo, hi) = costs.iter().fold((f64::MAX, 0f64), |(lo, hi), (_, c)| (lo.min(*c), hi.max(*c)));
        let sizes: Vec<String> = costs.iter().map(|(m, c)| format!("{m}: {c:.2}")).collect();
        let _ = writeln!(
            out,
            "\nServer µs per delivery by room size ({}): highest / lowest = {:.2}x",
            sizes.join(", "),
            hi / lo
        );
    }
    for line in lines.iter().filter(|l| l["mode"] == "conns") {
        let r = &line["result"];
        let label = line["label"].as_str().unwrap_or("conns");
        let _ = writeln!(
            out,
            "\n{label}: {} of {} held ({} refused or failed, {} dropped), {:.0} connects/s, server RSS {:.2} KiB per connection, /healthz {} ms while held.",
            r["connected"],
            r["attempted"],
            r["failures"],
            r["dropped"],
            f(&r["connects_per_sec"]),
            f(&r["server_rss_per_connection_kib"]),
            r["health_ms"].as_f64().map_or("-".into(), |ms| format!("{ms:.1}")),
        );
    }
    for line in lines.iter().filter(|l| l["mode"] == "join-storm") {
        let r = &line["result"];
        let _ = writeln!(
            out,
            "\nJoin storm: {} of {} joined in {:.2} s; members who read everything kept: {} of {}.",
            r["joined"],
            r["joiners"],
            f(&r["seconds"]),
            r["members_kept"],
            r["members"],
        );
    }
    for line in lines.iter().filter(|l| l["mode"] == "login-flood") {
        let r = &line["result"];
        let mib = |v: &Value| v.as_f64().map_or("-".into(), |kib| format!("{:.0} MiB", kib / 1024.0));
        let answers: Vec<String> = r["statuses"]
            .as_object()
            .map(|o| o.iter().map(|(status, n)| format!("{n} x {status}")).collect())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\nLogin flood: {} wrong logins at once: {}; server RSS {} before, {} at most; {} threads at most; /healthz max {:.1} ms.",
            r["attempts"],
            answers.join(", "),
            mib(&r["server_rss_before_kib"]),
            mib(&r["server_rss_peak_kib"]),
            r["server_threads_peak"],
            f(&r["health_max_ms"]),
        );
    }
    out
}
