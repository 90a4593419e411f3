//! Fan-out micro-benchmarks: one pre-encoded packet queued on 1k and 10k local sockets (the
//! in-memory part of a broadcast: room lookup, de-duplication mark, `Bytes` clone into each
//! socket's queue), and the cross-shard path (post to an inbox, take, deliver) on one thread.
//!
//! Run: `cargo bench --features bench-support --bench fanout`. Throughput is per recipient, so
//! criterion's "elem/s" inverts to ns per recipient.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringio::bench_support::FanoutFixture;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    for n in [1_000usize, 10_000] {
        let f = FanoutFixture::new(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("local/{n}"), |b| {
            b.iter_batched(|| f.clear(), |_| f.deliver(), BatchSize::PerIteration)
        });
        g.bench_function(format!("cross_shard_post_deliver/{n}"), |b| {
            b.iter_batched(
                || f.clear(),
                |_| f.post_and_deliver(),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
