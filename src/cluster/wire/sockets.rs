//! Sockets in fetch answers: `{id, handshake, rooms, data}`, the handshake as Node's
//! (`headers, time, address, xdomain, secure, issued, url, query, auth`).

use super::super::msgpack::{self, get, get_str, get_u64, map, string_array, strings, Value};
use crate::proto::http::{js_date_string, query_pairs};
use crate::sio::cluster::ClusterAdapter;
use crate::sio::RemoteSocket;
use std::sync::Arc;

/// A socket of this node as a fetch answer carries it.
pub fn to_value(s: &RemoteSocket) -> Value {
    let pairs = |v: Vec<(String, String)>| {
        Value::Map(v.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    };
    let xdomain = s.headers.iter().any(|(k, _)| k == "origin");
    let address = s.address.map(|a| a.ip().to_string()).unwrap_or_default();
    let json = |t: &str| msgpack::from_json(t.as_bytes(), &[]).unwrap_or(Value::Map(Vec::new()));
    let handshake = map(vec![
        ("headers", pairs(s.headers.clone())),
        ("time", js_date_string(s.issued).into()),
        ("address", address.into()),
        ("xdomain", xdomain.into()),
        ("secure", false.into()),
        ("issued", s.issued.into()),
        ("url", s.url.as_str().into()),
        ("query", pairs(query_pairs(&s.query))),
        ("auth", json(&s.auth)),
    ]);
    map(vec![
        ("id", s.id.as_str().into()),
        ("handshake", handshake),
        ("rooms", string_array(&s.rooms)),
        ("data", json(s.data.as_deref().unwrap_or("{}"))),
    ])
}

/// A socket of another node, from its fetch answer; its operations go through `adapter`.
pub fn from_value(v: &Value, ns: &str, adapter: &Arc<dyn ClusterAdapter>) -> Option<RemoteSocket> {
    let id = get_str(v, "id")?.to_string();
    let mut s = RemoteSocket::of_node(id, ns.into(), adapter.clone());
    s.rooms = strings(get(v, "rooms"));
    s.data = get(v, "data").map(json_text);
    let empty = Value::Nil;
    let hs = get(v, "handshake").unwrap_or(&empty);
    let text_pairs = |key: &str| match get(hs, key) {
        Some(Value::Map(m)) => m
            .iter()
            .filter_map(|(k, v)| {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| json_text(v));
                Some((k.as_str()?.to_string(), v))
            })
            .collect(),
        _ => Vec::new(),
    };
    s.headers = text_pairs("headers");
    s.query = text_pairs("query")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    s.url = get_str(hs, "url").unwrap_or("").to_string();
    s.issued = get_u64(hs, "issued").unwrap_or(0);
    s.address = get_str(hs, "address")
        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 0));
    s.auth = get(hs, "auth").map_or_else(|| "{}".into(), json_text);
    Some(s)
}

fn json_text(v: &Value) -> String {
    let (json, _) = msgpack::to_json_bytes(v);
    String::from_utf8_lossy(&json).into_owned()
}
