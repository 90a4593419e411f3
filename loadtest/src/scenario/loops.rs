//! churn (slots loop: connect, one echo+ack, disconnect; server RSS must come back) and rooms
//! (connections loop: join rK, bcast rK, leave rK).

use super::meter::{cpu_rows, window, Meter};
use super::progress::progress_sleep;
use super::{Ctx, Outcome, Scenario};
use crate::report::{Better, PlotData, Row};
use std::time::Duration;

pub(super) fn run(c: Ctx) -> Outcome {
    let Ctx {
        srvs,
        p,
        mut gen,
        m0,
        ..
    } = c;
    let m2 = gen.meter(srvs);
    gen.go();
    progress_sleep(p.duration, p.scenario.name());
    let m3 = gen.meter(srvs);
    let threads = gen.threads;
    let f = gen.finish();
    let out = &f.out;
    let w = window(&m2, &m3);
    let failures = f.failed + f.dropped;
    let churn = p.scenario == Scenario::Churn;
    let rate = if churn {
        "connects/s (connect, echo, disconnect)"
    } else {
        "cycles/s (join, bcast, leave)"
    };
    let mut rows = vec![Row::new(
        "ops_per_s",
        rate,
        Some(out.ops as f64 / w.wall_s),
        "/s",
        Better::Higher,
    )];
    rows.extend(Row::latency("cycle", "cycle", &out.rtt));
    if churn {
        rows.extend(
            Row::latency("connect", "connect+handshake", &out.connect)
                .into_iter()
                .filter(|r| r.key.ends_with("p50") || r.key.ends_with("p99")),
        );
    }
    rows.push(Row::new(
        "failures",
        "failures",
        Some((failures as u64 + if churn { out.failures } else { 0 }) as f64),
        "",
        Better::Lower,
    ));
    if churn {
        // memory must come back once the connections are gone
        std::thread::sleep(Duration::from_secs(2));
        let m4 = super::meter::meter(srvs, &[], false);
        rss_rows(&mut rows, &m0, &m3, &m4);
    }
    cpu_rows(&mut rows, &w, threads, out.ops, p.scenario.op_name());
    Outcome {
        rows,
        notes: Vec::new(),
        w,
        plot: PlotData::default(),
    }
}

/// churn: server RSS before, at the end and 2 s after.
fn rss_rows(rows: &mut Vec<Row>, m0: &Meter, m3: &Meter, m4: &Meter) {
    let mb = |m: &Meter| m.srv.map(|s| s.rss_kb as f64 / 1024.0);
    for (key, label, v) in [
        ("rss_before_mb", "server RSS before", mb(m0)),
        ("rss_end_mb", "server RSS at the end of churn", mb(m3)),
        ("rss_after_mb", "server RSS 2 s after", mb(m4)),
    ] {
        rows.push(Row::new(key, label, v, "MB", Better::Info));
    }
    rows.push(Row::new(
        "rss_growth_mb",
        "RSS growth (after - before)",
        match (mb(m4), mb(m0)) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        },
        "MB",
        Better::Lower,
    ));
}
