//! fanout: C receivers on "/", one sender emits `burst` x `bcast` null per slot every interval;
//! latency per slot from its first send to the LAST receiver having the slot's last event.

use super::hist::{hist, us};
use super::meter::{cpu_rows, window};
use super::runner::ThreadOut;
use super::{rss_per_conn, Ctx, Outcome};
use crate::report::{Better, PlotData, Row};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

pub(super) fn run(c: Ctx) -> Outcome {
    let Ctx {
        srvs,
        p,
        mut gen,
        m0,
        ramp,
        ..
    } = c;
    let connected = ramp.connected;
    std::thread::sleep(Duration::from_millis(300));
    let m2 = gen.meter(srvs);
    gen.go();
    let expected = (connected * p.broadcasts * p.burst.max(1)) as u64;
    let sched = p.interval * p.broadcasts as u32;
    // all deliveries, or 10 s past the sender's last broadcast
    gen.wait_deliveries(expected, Instant::now() + sched + Duration::from_secs(60));
    let m3 = gen.meter(srvs);
    let sender_failed = gen.fanout_progress().2;
    let threads = gen.threads;
    let f = gen.finish();
    let w = window(&m2, &m3);
    let burst = p.burst.max(1);
    let mut plot = PlotData::default();
    let s = slots(&f.out, connected, burst, &mut plot);
    let missing = (connected * s.sent).saturating_sub(s.delivered as usize) as u64
        + (connected * (p.broadcasts * burst).saturating_sub(s.sent)) as u64;
    let span = match (s.first_send, s.last_recv) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(1e-9),
        _ => w.wall_s,
    };
    let mut notes = Vec::new();
    if s.incomplete > 0 {
        notes.push(format!(
            "{} broadcast slot(s) did not reach every receiver: their latency is that of the last delivery of the slot",
            s.incomplete
        ));
    }
    if sender_failed {
        notes.push("the sender failed; broadcasts not sent count as missing".into());
    }
    let mut rows = vec![Row::new(
        "ops_per_s",
        "deliveries/s",
        Some(s.delivered as f64 / span),
        "/s",
        Better::Higher,
    )];
    rows.extend(Row::latency("last", "send -> LAST receiver", &s.last));
    rows.extend(
        Row::latency("delivery", "send -> each delivery", &s.delivery)
            .into_iter()
            .filter(|r| r.key.ends_with("p50") || r.key.ends_with("p99")),
    );
    rows.push(Row::new(
        "failures",
        "failures (missing deliveries)",
        Some((missing + f.failed as u64) as f64),
        "",
        Better::Lower,
    ));
    let ack = f.out.sends.iter().map(|s| s.3.as_secs_f64() * 1000.0);
    for (key, label, v, unit, better) in [
        (
            "bcast_ack_ms_max",
            "bcast ack RTT, max",
            ack.reduce(f64::max),
            "ms",
            Better::Lower,
        ),
        (
            "broadcasts",
            "broadcasts sent",
            Some(s.sent as f64),
            "",
            Better::Info,
        ),
        (
            "deliveries",
            "deliveries",
            Some(s.delivered as f64),
            "",
            Better::Info,
        ),
        (
            "rss_per_conn_kb",
            "server RSS per connection",
            rss_per_conn(&m0, &m2, connected),
            "KB",
            Better::Lower,
        ),
    ] {
        rows.push(Row::new(key, label, v, unit, better));
    }
    cpu_rows(&mut rows, &w, threads, s.delivered, "delivery");
    Outcome {
        rows,
        notes,
        w,
        plot,
    }
}

/// The deliveries matched to the sends, per slot.
struct Slots {
    /// `bcast` messages sent (acked)
    sent: usize,
    /// deliveries of a sent seq
    delivered: u64,
    /// send -> each delivery; send -> the slot's LAST delivery
    delivery: Histogram<u64>,
    last: Histogram<u64>,
    /// slots that did not reach every receiver
    incomplete: usize,
    first_send: Option<Instant>,
    last_recv: Option<Instant>,
}

/// Per slot: time from the slot's first send to the LAST receiver having the last `bcast` of
/// the slot (with --burst 1, a slot is one broadcast); the plot's per-slot series.
fn slots(out: &ThreadOut, connected: usize, burst: usize, plot: &mut PlotData) -> Slots {
    let sends: HashMap<u64, (usize, Instant)> = out
        .sends
        .iter()
        .map(|(s, k, t, _)| (*s, (*k, *t)))
        .collect();
    // slot -> (deliveries, last receive, first send)
    let mut per_slot: BTreeMap<usize, (usize, Option<Instant>, Instant)> = BTreeMap::new();
    for (k, t) in sends.values() {
        per_slot.entry(*k).or_insert((0, None, *t));
    }
    let mut s = Slots {
        sent: sends.len(),
        delivered: 0,
        delivery: hist(),
        last: hist(),
        incomplete: 0,
        first_send: None,
        last_recv: None,
    };
    for (seq, at) in &out.recv {
        let Some((k, sent)) = sends.get(seq) else {
            continue;
        };
        s.delivered += 1;
        let _ = s.delivery.record(us(at.saturating_duration_since(*sent)));
        let e = per_slot.get_mut(k).expect("slot of a sent seq");
        e.0 += 1;
        if e.1.is_none_or(|l| *at > l) {
            e.1 = Some(*at);
        }
    }
    for (k, (cnt, at, sent)) in &per_slot {
        s.first_send = Some(s.first_send.map_or(*sent, |f| f.min(*sent)));
        let Some(at) = at else { continue };
        plot.last_ms.push((
            *k as u64 + 1,
            at.saturating_duration_since(*sent).as_secs_f64() * 1000.0,
        ));
        s.last_recv = Some(s.last_recv.map_or(*at, |l| l.max(*at)));
        let _ = s.last.record(us(at.saturating_duration_since(*sent)));
        if *cnt < connected * burst {
            s.incomplete += 1;
        }
    }
    s
}
