//! Event arguments: received ones stay raw JSON until a handler asks for a type; emitted ones are
//! serialized once.
//!
//! Binary data anywhere inside arguments is a [`Binary`]: serializing one inside an emit records
//! it as an attachment and writes Socket.IO's placeholder; deserializing a placeholder while a
//! handler's arguments are decoded picks the matching attachment. Both use a thread-local slot
//! set only for the duration of one encode or decode (shards are single-threaded).
//!
//! Must not: know sockets or transports.

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::cell::RefCell;
use std::ops::Range;

thread_local! {
    static OUT_ATTACH: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
    static IN_ATTACH: RefCell<Vec<Bytes>> = const { RefCell::new(Vec::new()) };
}

/// Binary data (a Socket.IO attachment) inside event arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binary(pub Bytes);

impl Serialize for Binary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let num = OUT_ATTACH.with(|a| {
            a.borrow_mut().as_mut().map(|v| {
                v.push(self.0.clone());
                v.len() - 1
            })
        });
        match num {
            Some(num) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("_placeholder", &true)?;
                m.serialize_entry("num", &num)?;
                m.end()
            }
            None => s.serialize_bytes(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Placeholder {
            #[serde(rename = "_placeholder")]
            placeholder: bool,
            num: usize,
        }
        let p = Placeholder::deserialize(d)?;
        if !p.placeholder {
            return Err(serde::de::Error::custom("not a binary placeholder"));
        }
        IN_ATTACH
            .with(|a| a.borrow().get(p.num).cloned())
            .map(Binary)
            .ok_or_else(|| serde::de::Error::custom("attachment index out of range"))
    }
}

/// Received arguments: the packet's JSON and the ranges of each argument, plus attachments.
#[derive(Debug, Clone, Default)]
pub struct RawArgs {
    data: Bytes,
    ranges: SmallVec<[Range<u32>; 4]>,
    attachments: Vec<Bytes>,
}

/// An argument that did not deserialize into the type a handler asked for.
#[derive(Debug)]
pub struct ArgError {
    index: usize,
    source: sonic_rs::Error,
}

impl ArgError {
    /// Which argument (0-based).
    pub fn index(&self) -> usize {
        self.index
    }
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad event argument {}: {}", self.index, self.source)
    }
}
impl std::error::Error for ArgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl RawArgs {
    pub(crate) fn new(
        data: Bytes,
        ranges: SmallVec<[Range<u32>; 4]>,
        attachments: Vec<Bytes>,
    ) -> Self {
        RawArgs {
            data,
            ranges,
            attachments,
        }
    }
    /// Arguments serialized by an [`ArgWriter`] (comma-separated values, no brackets), read back.
    pub(crate) fn from_array_items(items: Bytes, attachments: Vec<Bytes>) -> Self {
        let mut b = BytesMut::with_capacity(items.len() + 2);
        b.put_u8(b'[');
        b.put_slice(&items);
        b.put_u8(b']');
        let data = b.freeze();
        let ranges = super::split_array(&data).unwrap_or_default();
        RawArgs {
            data,
            ranges,
            attachments,
        }
    }
    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }
    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    /// The raw JSON text of argument `i`.
    pub fn raw(&self, i: usize) -> Option<&str> {
        let r = self.ranges.get(i)?;
        std::str::from_utf8(&self.data[r.start as usize..r.end as usize]).ok()
    }
    /// Argument `i` alone (with the packet's attachments, so binary inside it survives).
    pub fn only(&self, i: usize) -> RawArgs {
        let ranges = self.ranges.get(i).cloned().into_iter().collect();
        RawArgs {
            data: self.data.clone(),
            ranges,
            attachments: self.attachments.clone(),
        }
    }
    /// Binary attachments, in placeholder order.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }
    /// Deserializes argument `i` (a missing argument reads as JSON `null`).
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, ArgError> {
        let raw = self.raw(i).unwrap_or("null");
        with_attachments(&self.attachments, || sonic_rs::from_str(raw))
            .map_err(|source| ArgError { index: i, source })
    }
}

fn with_attachments<R>(att: &[Bytes], f: impl FnOnce() -> R) -> R {
    if att.is_empty() {
        return f();
    }
    IN_ATTACH.with(|a| *a.borrow_mut() = att.to_vec());
    let r = f();
    IN_ATTACH.with(|a| a.borrow_mut().clear());
    r
}

/// Converts received arguments into what a handler asked for.
pub trait FromArgs: Sized {
    /// Performs the conversion.
    fn from_args(args: RawArgs) -> Result<Self, ArgError>;
}

impl FromArgs for RawArgs {
    fn from_args(args: RawArgs) -> Result<Self, ArgError> {
        Ok(args)
    }
}

impl FromArgs for () {
    fn from_args(_: RawArgs) -> Result<Self, ArgError> {
        Ok(())
    }
}

impl FromArgs for Vec<sonic_rs::Value> {
    fn from_args(args: RawArgs) -> Result<Self, ArgError> {
        (0..args.len()).map(|i| args.get(i)).collect()
    }
}

macro_rules! tuple_from_args {
    ($($t:ident $i:tt),+) => {
        impl<$($t: DeserializeOwned),+> FromArgs for ($($t,)+) {
            fn from_args(args: RawArgs) -> Result<Self, ArgError> {
                Ok(($(args.get::<$t>($i)?,)+))
            }
        }
    };
}
tuple_from_args!(A 0);
tuple_from_args!(A 0, B 1);
tuple_from_args!(A 0, B 1, C 2);
tuple_from_args!(A 0, B 1, C 2, D 3);
tuple_from_args!(A 0, B 1, C 2, D 3, E 4);
tuple_from_args!(A 0, B 1, C 2, D 3, E 4, F 5);

/// Serialized arguments: comma-separated JSON values (no brackets) plus attachments.
#[derive(Debug, Default, Clone)]
pub struct ArgWriter {
    pub(crate) json: BytesMut,
    pub(crate) attachments: Vec<Bytes>,
    count: usize,
}

impl ArgWriter {
    /// Appends one argument.
    pub fn push<T: Serialize + ?Sized>(&mut self, v: &T) {
        if self.count > 0 {
            self.json.put_u8(b',');
        }
        self.count += 1;
        let prev = OUT_ATTACH.with(|a| {
            a.borrow_mut()
                .replace(std::mem::take(&mut self.attachments))
        });
        let res = sonic_rs::to_writer((&mut self.json).writer(), v);
        self.attachments = OUT_ATTACH
            .with(|a| std::mem::replace(&mut *a.borrow_mut(), prev))
            .unwrap_or_default();
        if res.is_err() {
            self.json.put_slice(b"null");
        }
    }
    /// Appends an already-serialized JSON value.
    pub fn push_raw(&mut self, json: &[u8]) {
        if self.count > 0 {
            self.json.put_u8(b',');
        }
        self.count += 1;
        self.json.put_slice(json);
    }
}

/// Values that can be emitted as event or ack arguments.
pub trait IntoArgs {
    /// Writes the arguments.
    fn write_args(self, w: &mut ArgWriter);
}

impl IntoArgs for () {
    fn write_args(self, _: &mut ArgWriter) {}
}

impl IntoArgs for RawArgs {
    fn write_args(self, w: &mut ArgWriter) {
        // placeholders keep their numbers: attachments are appended in their original order
        let base = w.attachments.len();
        for i in 0..self.len() {
            let r = &self.ranges[i];
            w.push_raw(&self.data[r.start as usize..r.end as usize]);
        }
        debug_assert_eq!(base, 0, "raw args with attachments must be emitted alone");
        w.attachments.extend(self.attachments);
    }
}

impl IntoArgs for &RawArgs {
    fn write_args(self, w: &mut ArgWriter) {
        self.clone().write_args(w)
    }
}

impl<T: Serialize> IntoArgs for Vec<T> {
    fn write_args(self, w: &mut ArgWriter) {
        for v in &self {
            w.push(v);
        }
    }
}

macro_rules! tuple_into_args {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Serialize),+> IntoArgs for ($($t,)+) {
            fn write_args(self, w: &mut ArgWriter) {
                $(w.push(&self.$i);)+
            }
        }
    };
}
tuple_into_args!(A 0);
tuple_into_args!(A 0, B 1);
tuple_into_args!(A 0, B 1, C 2);
tuple_into_args!(A 0, B 1, C 2, D 3);
tuple_into_args!(A 0, B 1, C 2, D 3, E 4);
tuple_into_args!(A 0, B 1, C 2, D 3, E 4, F 5);

/// One argument given as raw JSON text (emitted as is, not validated).
#[derive(Debug, Clone)]
pub struct RawJson(pub String);

impl IntoArgs for RawJson {
    fn write_args(self, w: &mut ArgWriter) {
        w.push_raw(self.0.as_bytes());
    }
}

/// Serializes arguments once.
pub fn to_writer(args: impl IntoArgs) -> ArgWriter {
    let mut w = ArgWriter::default();
    args.write_args(&mut w);
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sio;

    fn received(packet: &str, att: Vec<Bytes>) -> RawArgs {
        let data = Bytes::copy_from_slice(packet.as_bytes());
        let (_, ranges) = sio::event_name(&data).unwrap();
        RawArgs::new(data, ranges, att)
    }

    #[test]
    fn typed_and_raw_access() {
        let a = received(r#"["m",1,"two",{"x":[true]}]"#, vec![]);
        let (n, s): (u32, String) = FromArgs::from_args(a.clone()).unwrap();
        assert_eq!((n, s.as_str()), (1, "two"));
        assert_eq!(a.raw(2), Some(r#"{"x":[true]}"#));
        assert!(a.get::<String>(0).is_err());
        assert_eq!(a.get::<Option<u8>>(7).unwrap(), None);
    }

    #[test]
    fn binary_placeholders_both_ways() {
        let w = to_writer((
            Binary(Bytes::from_static(&[1, 2])),
            "x",
            vec![Binary(Bytes::from_static(&[3]))],
        ));
        assert_eq!(
            &w.json[..],
            br#"{"_placeholder":true,"num":0},"x",[{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(
            w.attachments,
            vec![Bytes::from_static(&[1, 2]), Bytes::from_static(&[3])]
        );
        let a = received(
            r#"["m",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        );
        let (x, y): (Binary, Binary) = FromArgs::from_args(a.clone()).unwrap();
        assert_eq!((&x.0[..], &y.0[..]), (&b"b"[..], &b"a"[..]));
        let echoed = to_writer(a);
        assert_eq!(
            &echoed.json[..],
            br#"{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}"#
        );
        assert_eq!(echoed.attachments.len(), 2);
    }
}
