//! Codec micro-benchmarks: decode + encode of a small event at each layer.
//!
//! Run: `cargo bench --bench codec`. Figures go in BENCHMARKS.md.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringio::proto::{eio, sio, ws};
use std::hint::black_box;

const EVENT: &[u8] =
    br#"2["echo",1,"two",{"three":[true,false],"four":"a string of some length"}]"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sio/decode_event", |b| {
        let msg = Bytes::from_static(EVENT);
        b.iter(|| {
            // decode validates the JSON once and keeps the name/argument ranges
            let p = sio::decode(black_box(msg.clone()), 10).unwrap();
            black_box(p.parts);
        })
    });
    g.bench_function("sio/encode_event", |b| {
        b.iter(|| {
            let out = sio::encode(sio::Kind::Event, "/", None, black_box(&EVENT[1..]));
            black_box(out);
        })
    });
    let mask = [1, 2, 3, 4];
    let mut text = b"4".to_vec();
    text.extend_from_slice(EVENT);
    let frame = ws::client_frame(ws::OpCode::Text, &text, mask);
    g.bench_function("ws/decode_masked_frame", |b| {
        let mut dec = ws::Decoder::new(ws::Role::Server, 1 << 20);
        b.iter(|| {
            let mut buf = BytesMut::from(&frame[..]);
            let m = dec.decode(&mut buf).unwrap().unwrap();
            black_box(m);
        })
    });
    g.bench_function("ws/encode_header", |b| {
        let mut h = [0u8; 14];
        b.iter(|| {
            black_box(ws::encode_header(
                ws::OpCode::Text,
                black_box(text.len()),
                None,
                &mut h,
            ))
        })
    });
    g.bench_function("full/decode_ws_eio_sio_event", |b| {
        let mut dec = ws::Decoder::new(ws::Role::Server, 1 << 20);
        b.iter(|| {
            let mut buf = BytesMut::from(&frame[..]);
            let ws::Message::Text(t) = dec.decode(&mut buf).unwrap().unwrap() else {
                unreachable!()
            };
            let eio::Packet::Message(m) = eio::Packet::decode_text(t).unwrap() else {
                unreachable!()
            };
            let p = sio::decode(m, 10).unwrap();
            black_box(p.parts);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
