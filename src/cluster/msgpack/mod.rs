//! MessagePack as notepack.io (the encoder of Node's Redis adapter and emitter) writes it, and
//! the bridge between it and Socket.IO's JSON with binary placeholders.
//!
//! notepack's choices, kept here so a ringio node writes the bytes a Node node writes for the
//! same value: integers in the smallest form (positive ones unsigned), every non-integer
//! number as float64, strings as str8/16/32 (fixstr under 32 bytes), Buffers as bin, maps in
//! key order. rmpv's encoder makes the same choices for the same [`Value`] tree; numbers read
//! from JSON become integers when they are integral (JavaScript has one number type).
//!
//! Reading: a Date (timestamp extension -1, or notepack's old ext 0 form) becomes its ISO
//! string, as `JSON.stringify` writes a Date; `undefined` (fixext 0) becomes null; other
//! extensions become `[type, <binary>]`, as notepack decodes them.
//!
//! Must not: know channels or message types (see [`super::wire`]).

use bytes::Bytes;
pub use rmpv::Value;

/// Values nested deeper than this are refused (network input).
const MAX_DEPTH: usize = 64;

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not MessagePack (or trailing bytes).
    Msgpack,
    /// Not JSON.
    Json,
    /// Nested too deep.
    TooDeep,
    /// A placeholder numbers an attachment that is not there.
    Attachment,
}

/// Decodes one MessagePack value (the whole payload).
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut rd = bytes;
    let v = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
        .map_err(|_| DecodeError::Msgpack)?;
    if !rd.is_empty() {
        return Err(DecodeError::Msgpack);
    }
    Ok(v)
}

/// Encodes a value.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // writing into a Vec cannot fail
    let _ = rmpv::encode::write_value(&mut out, v);
    out
}

/// Reads JSON text into a value; Socket.IO placeholders `{"_placeholder":true,"num":i}` become
/// `attachments[i]` as binary.
pub fn from_json(json: &[u8], attachments: &[Bytes]) -> Result<Value, DecodeError> {
    if !depth_within(json, MAX_DEPTH) {
        return Err(DecodeError::TooDeep);
    }
    let v: sonic_rs::Value = sonic_rs::from_slice(json).map_err(|_| DecodeError::Json)?;
    from_sonic(&v, attachments, 0)
}

/// True when JSON text nests arrays and objects at most `max` deep (checked before parsing:
/// the parsed tree is walked recursively).
fn depth_within(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &b in json {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

fn from_sonic(v: &sonic_rs::Value, att: &[Bytes], depth: usize) -> Result<Value, DecodeError> {
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    if let Some(s) = v.as_str() {
        return Ok(Value::from(s));
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Boolean(b));
    }
    if v.is_null() {
        return Ok(Value::Nil);
    }
    if let Some(u) = v.as_u64() {
        return Ok(Value::from(u));
    }
    if let Some(i) = v.as_i64() {
        return Ok(Value::from(i));
    }
    if let Some(f) = v.as_f64() {
        return Ok(number(f));
    }
    if let Some(a) = v.as_array() {
        let items = a.iter().map(|x| from_sonic(x, att, depth + 1));
        return items.collect::<Result<_, _>>().map(Value::Array);
    }
    let Some(o) = v.as_object() else {
        return Ok(Value::Nil);
    };
    if o.len() == 2 && o.get(&"_placeholder").and_then(|p| p.as_bool()) == Some(true) {
        if let Some(n) = o.get(&"num").and_then(|n| n.as_u64()) {
            let b = att.get(n as usize).ok_or(DecodeError::Attachment)?;
            return Ok(Value::Binary(b.to_vec()));
        }
    }
    let mut m = Vec::with_capacity(o.len());
    for (k, x) in o.iter() {
        m.push((Value::from(k), from_sonic(x, att, depth + 1)?));
    }
    Ok(Value::Map(m))
}

/// A JavaScript number as notepack writes it: an integer when integral, else float64.
pub fn number(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        if f >= 0.0 {
            Value::from(f as u64)
        } else {
            Value::from(f as i64)
        }
    } else {
        Value::F64(f)
    }
}

/// Writes a value as JSON; binary becomes a placeholder numbering the attachment pushed onto
/// `attachments`.
pub fn to_json(v: &Value, out: &mut Vec<u8>, attachments: &mut Vec<Bytes>) {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::F32(f) => float(*f as f64, out),
        Value::F64(f) => float(*f, out),
        Value::String(s) => string(&String::from_utf8_lossy(s.as_bytes()), out),
        Value::Binary(b) => placeholder(Bytes::copy_from_slice(b), out, attachments),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                to_json(x, out, attachments);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match k {
                    Value::String(s) => string(&String::from_utf8_lossy(s.as_bytes()), out),
                    other => {
                        let mut key = Vec::new();
                        to_json(other, &mut key, &mut Vec::new());
                        string(&String::from_utf8_lossy(&key), out);
                    }
                }
                out.push(b':');
                to_json(x, out, attachments);
            }
            out.push(b'}');
        }
        Value::Ext(t, data) => ext(*t, data, out, attachments),
    }
}

/// A value as JSON text (binary as placeholders) and its attachments.
pub fn to_json_bytes(v: &Value) -> (Bytes, Vec<Bytes>) {
    let (mut out, mut att) = (Vec::new(), Vec::new());
    to_json(v, &mut out, &mut att);
    (out.into(), att)
}

fn float(f: f64, out: &mut Vec<u8>) {
    if !f.is_finite() {
        // JSON.stringify(NaN) === "null"
        out.extend_from_slice(b"null");
    } else if f.fract() == 0.0 && f.abs() < 1e21 {
        out.extend_from_slice(format!("{}", f as i128).as_bytes());
    } else {
        out.extend_from_slice(sonic_rs::to_string(&f).unwrap_or_default().as_bytes());
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(sonic_rs::to_string(s).unwrap_or_default().as_bytes());
}

fn placeholder(b: Bytes, out: &mut Vec<u8>, attachments: &mut Vec<Bytes>) {
    let n = attachments.len();
    attachments.push(b);
    out.extend_from_slice(format!("{{\"_placeholder\":true,\"num\":{n}}}").as_bytes());
}

fn ext(t: i8, data: &[u8], out: &mut Vec<u8>, attachments: &mut Vec<Bytes>) {
    let date = match (t, data.len()) {
        (-1, 4) => be(data).map(|s| (s as i64, 0)),
        (-1, 8) => be(data).map(|d| ((d & 0x3_ffff_ffff) as i64, (d >> 34) as u32)),
        (-1, 12) => {
            let ns = be(&data[..4]).map(|n| n as u32);
            let s = be(&data[4..]).map(|s| s as i64);
            ns.zip(s).map(|(ns, s)| (s, ns))
        }
        // notepack's old Date: ms since the epoch, in a fixext 8 of type 0
        (0, 8) => be(data).map(|ms| {
            let ms = ms as i64;
            (
                ms.div_euclid(1000),
                (ms.rem_euclid(1000) * 1_000_000) as u32,
            )
        }),
        // notepack's `undefined`
        (0, 1) => {
            out.extend_from_slice(b"null");
            return;
        }
        _ => None,
    };
    match date {
        Some((s, ns)) => string(&iso_date(s, ns), out),
        None if t == 0 => placeholder(Bytes::copy_from_slice(data), out, attachments),
        None => {
            out.extend_from_slice(format!("[{t},").as_bytes());
            placeholder(Bytes::copy_from_slice(data), out, attachments);
            out.push(b']');
        }
    }
}

fn be(b: &[u8]) -> Option<u64> {
    (b.len() <= 8).then(|| b.iter().fold(0u64, |a, &x| (a << 8) | x as u64))
}

/// `Date.prototype.toISOString` of a time given in seconds and nanoseconds since the epoch.
pub fn iso_date(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::proto::http::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos / 1_000_000
    )
}

/// The field `key` of a map.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|x| &x.1),
        _ => None,
    }
}

/// A string field.
pub fn get_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// A number field, whatever its encoding.
pub fn get_u64(v: &Value, key: &str) -> Option<u64> {
    get(v, key).and_then(as_u64)
}

/// A number as u64 (integers, and integral floats, as JavaScript sees them).
pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(i) => i.as_u64(),
        Value::F64(f) if *f >= 0.0 && f.fract() == 0.0 => Some(*f as u64),
        _ => None,
    }
}

/// An array of strings (numbers become their text, as JavaScript room names would).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(a)) = v else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|x| match x {
            Value::String(s) => s.as_str().map(str::to_string),
            Value::Integer(i) => Some(i.to_string()),
            _ => None,
        })
        .collect()
}

/// A map from string keys.
pub fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// An array of strings.
pub fn string_array(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::from(s.as_str())).collect())
}

/// True when the value holds binary somewhere (Node's `hasBinary`).
pub fn has_binary(v: &Value) -> bool {
    match v {
        Value::Binary(_) | Value::Ext(..) => true,
        Value::Array(a) => a.iter().any(has_binary),
        Value::Map(m) => m.iter().any(|(_, x)| has_binary(x)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
