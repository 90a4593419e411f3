//! echo and polling-mix (closed loop: connections keep one echo+ack in flight; `--in-flight`
//! of them for echo, the others idle) and echo-open (open loop: a fixed total rate, latency from
//! each request's scheduled instant).

use super::hist::cdf;
use super::meter::{cpu_rows, window};
use super::progress::progress_sleep;
use super::{rss_per_conn, Ctx, Outcome};
use crate::report::{Better, PlotData, Row};
use std::time::Duration;

/// echo, polling-mix: GO, `-d` seconds, STOP.
pub(super) fn closed(c: Ctx) -> Outcome {
    let Ctx {
        srvs,
        p,
        mut gen,
        m0,
        ramp,
        ..
    } = c;
    let m2 = gen.meter(srvs);
    gen.go();
    progress_sleep(p.duration, p.scenario.name());
    let m3 = gen.meter(srvs);
    let threads = gen.threads;
    let f = gen.finish();
    let (out, connected) = (&f.out, ramp.connected);
    let w = window(&m2, &m3);
    let polling = p.scenario == super::Scenario::PollingMix;
    let mut rows = vec![Row::new(
        "ops_per_s",
        if polling {
            "echo acks/s (all)"
        } else {
            "echo acks/s"
        },
        Some((out.ops + out.ops2) as f64 / w.wall_s),
        "/s",
        Better::Higher,
    )];
    rows.extend(Row::latency(
        "rtt",
        if polling { "ws echo RTT" } else { "echo RTT" },
        &out.rtt,
    ));
    if polling {
        rows.push(Row::new(
            "poll_ops_per_s",
            "polling echo acks/s",
            Some(out.ops2 as f64 / w.wall_s),
            "/s",
            Better::Higher,
        ));
        rows.extend(Row::latency("poll_rtt", "polling echo RTT", &out.rtt2));
    }
    rows.push(Row::new(
        "failures",
        "failures",
        Some((f.failed + f.dropped) as f64),
        "",
        Better::Lower,
    ));
    rows.push(Row::new(
        "rss_per_conn_kb",
        "server RSS per connection",
        rss_per_conn(&m0, &m2, connected),
        "KB",
        Better::Lower,
    ));
    rows.push(Row::new(
        "connections",
        "connections",
        Some(connected as f64),
        "",
        Better::Info,
    ));
    cpu_rows(&mut rows, &w, threads, out.ops + out.ops2, "echo+ack");
    let plot = PlotData {
        cdf: cdf(&out.rtt),
        ..PlotData::default()
    };
    Outcome {
        rows,
        notes: Vec::new(),
        w,
        plot,
    }
}

/// echo-open: GO, the schedule for `-d` seconds, up to 5 s for the last answers, STOP.
pub(super) fn open(c: Ctx) -> Outcome {
    let Ctx {
        srvs, p, mut gen, ..
    } = c;
    let m2 = gen.meter(srvs);
    gen.go();
    progress_sleep(p.duration, "echo-open");
    // the schedule is over: let the last acks arrive (up to 5 s)
    gen.drain(Duration::from_secs(5));
    let m3 = gen.meter(srvs);
    let threads = gen.threads;
    let f = gen.finish();
    let out = &f.out;
    let w = window(&m2, &m3);
    let d = p.duration.as_secs_f64();
    let mut rows = vec![
        Row::new(
            "ops_per_s",
            "echo acks/s (answered / duration)",
            Some(out.ops as f64 / d),
            "/s",
            Better::Higher,
        ),
        Row::new(
            "offered_per_s",
            "offered rate",
            Some(p.open_rate),
            "/s",
            Better::Info,
        ),
    ];
    rows.extend(Row::latency("rtt", "echo latency from schedule", &out.rtt));
    for (key, label, v) in [
        ("late_sends", "sends > 5 ms behind schedule", out.late),
        ("unanswered", "unanswered at the end (+5 s)", out.unanswered),
        ("failures", "failures", (f.failed + f.dropped) as u64),
    ] {
        rows.push(Row::new(key, label, Some(v as f64), "", Better::Lower));
    }
    cpu_rows(&mut rows, &w, threads, out.ops, "echo+ack");
    let plot = PlotData {
        cdf: cdf(&out.rtt),
        ..PlotData::default()
    };
    Outcome {
        rows,
        notes: Vec::new(),
        w,
        plot,
    }
}
