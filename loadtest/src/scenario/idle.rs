//! idle: C connections opened at a fixed arrival rate, then held with no traffic: connects/s,
//! connect latency, server RSS per connection, CPU per connect over the ramp, and the CPU of
//! the server, the client and the machine while nothing happens (the hold).

use super::meter::{cpu_rows, hold_rows, other_cores, window};
use super::progress::progress_sleep;
use super::{rss_per_conn, Ctx, Outcome};
use crate::report::{Better, PlotData, Row};

pub(super) fn run(c: Ctx) -> Outcome {
    let Ctx {
        srvs,
        p,
        gen,
        m0,
        m1,
        ramp,
        ramp_w,
    } = c;
    progress_sleep(p.hold, "idle hold");
    let m2 = gen.meter(srvs);
    let hold_w = window(&m1, &m2);
    let threads = gen.threads;
    let f = gen.finish();
    let connected = ramp.connected;
    let failures = f.failed + f.dropped;
    let mut rows = vec![
        Row::new(
            "connections",
            "connections open",
            Some(connected as f64),
            "",
            Better::Info,
        ),
        Row::new(
            "ops_per_s",
            "connects/s (ramp)",
            Some(connected as f64 / ramp_w.wall_s),
            "/s",
            Better::Higher,
        ),
    ];
    rows.extend(Row::latency("connect", "connect+handshake", &f.out.connect));
    rows.push(Row::new(
        "failures",
        "failures",
        Some(failures as f64),
        "",
        Better::Lower,
    ));
    let rss = match (m0.srv, m2.srv) {
        (Some(a), Some(b)) => Some((a.rss_kb as f64, b.rss_kb as f64)),
        _ => None,
    };
    let mb = |f: fn((f64, f64)) -> f64| rss.map(f).map(|kb| kb / 1024.0);
    rows.push(Row::new(
        "rss_per_conn_kb",
        "server RSS per connection",
        rss_per_conn(&m0, &m2, connected),
        "KB",
        Better::Lower,
    ));
    for (key, label, v, better) in [
        (
            "rss_before_mb",
            "server RSS before",
            mb(|r| r.0),
            Better::Info,
        ),
        (
            "rss_after_mb",
            "server RSS after hold",
            mb(|r| r.1),
            Better::Info,
        ),
        (
            "rss_growth_mb",
            "server RSS growth",
            mb(|r| r.1 - r.0),
            Better::Lower,
        ),
    ] {
        rows.push(Row::new(key, label, v, "MB", better));
    }
    if p.servers > 1 {
        rows.push(Row::new(
            "server_procs",
            "server processes (RSS, CPU: sums)",
            Some(p.servers as f64),
            "",
            Better::Info,
        ));
    }
    cpu_rows(&mut rows, &ramp_w, threads, connected as u64, "connect");
    hold_rows(&mut rows, &hold_w);
    let mut notes = Vec::new();
    let other = other_cores(&hold_w);
    if other > 0.25 {
        notes.push(format!(
            "during the hold other processes used {other:.2} cores: the machine's idle figure is theirs"
        ));
    }
    Outcome {
        rows,
        notes,
        w: ramp_w,
        plot: PlotData::default(),
    }
}
