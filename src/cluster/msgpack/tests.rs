//! Bytes written by notepack.io 3 (Node) for the same values: a ringio node must write them too.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn opts(rooms: &[&str]) -> Value {
    let rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
    map(vec![
        ("rooms", string_array(&rooms)),
        ("except", Value::Array(vec![])),
        ("flags", Value::Map(vec![])),
    ])
}

#[test]
fn broadcast_bytes_as_notepack() {
    // notepack.encode(["fY5DcJ",{type:2,data:[...],nsp:"/"},{rooms:["r1"],except:[],flags:{}}])
    let node = hex("93a666593544634a83a47479706502a4646174619ca4726f6f6da17801ffcb3ff8000000000000cd012cd1ff38ce00011170cf0000000100000000c3c081a1619101a36e7370a12f83a5726f6f6d7391a27231a665786365707490a5666c61677380");
    let data = from_json(
        br#"["room","x",1,-1,1.5,300,-200,70000,4294967296,true,null,{"a":[1.0]}]"#,
        &[],
    )
    .unwrap();
    let packet = map(vec![
        ("type", 2.into()),
        ("data", data),
        ("nsp", "/".into()),
    ]);
    let msg = Value::Array(vec!["fY5DcJ".into(), packet, opts(&["r1"])]);
    assert_eq!(encode(&msg), node);
    assert_eq!(decode(&node).unwrap(), msg);
}

#[test]
fn binary_round_trip() {
    // the emitter: ["emitter",{type:2,data:["b",Buffer<010203>],nsp:"/"},{rooms:[],flags:{},except:[]}]
    let node = hex("93a7656d697474657283a47479706502a46461746192a162c403010203a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490");
    let v = decode(&node).unwrap();
    let data = get(&v.as_array().unwrap()[1], "data").unwrap();
    let (json, att) = to_json_bytes(data);
    assert_eq!(&json[..], br#"["b",{"_placeholder":true,"num":0}]"#);
    assert_eq!(att, vec![Bytes::from_static(&[1, 2, 3])]);
    assert_eq!(&from_json(&json, &att).unwrap(), data);
}

#[test]
fn dates_become_iso_strings() {
    // [new Date(Date.UTC(2024,0,2,3,4,5,678)), new Date(1700000000000)]
    let node = hex("92d7ffa1a5d60065937d25d6ff6553f100");
    let (json, _) = to_json_bytes(&decode(&node).unwrap());
    assert_eq!(
        std::str::from_utf8(&json).unwrap(),
        r#"["2024-01-02T03:04:05.678Z","2023-11-14T22:13:20.000Z"]"#
    );
    assert_eq!(iso_date(0, 0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_date(-1, 0), "1969-12-31T23:59:59.000Z");
}

#[test]
fn strings_and_numbers() {
    let node = hex("92d92878787878787878787878787878787878787878787878787878787878787878787878787878787878a2c3a9");
    let v = Value::Array(vec!["x".repeat(40).into(), "é".into()]);
    assert_eq!(encode(&v), node);
    assert_eq!(number(2.0), Value::from(2u64));
    assert_eq!(number(-3.0), Value::from(-3i64));
    assert_eq!(number(0.5), Value::F64(0.5));
    let (json, _) = to_json_bytes(&Value::Array(vec![Value::F64(f64::NAN), Value::F64(2.0)]));
    assert_eq!(&json[..], b"[null,2]");
}

#[test]
fn bad_input_is_an_error() {
    assert_eq!(decode(&[0x93, 0x01]), Err(DecodeError::Msgpack));
    assert_eq!(decode(&[0x01, 0x02]), Err(DecodeError::Msgpack));
    assert_eq!(from_json(b"[1,", &[]), Err(DecodeError::Json));
    assert_eq!(
        from_json(br#"[{"_placeholder":true,"num":3}]"#, &[]),
        Err(DecodeError::Attachment)
    );
    let deep = "[".repeat(200) + &"]".repeat(200);
    assert!(from_json(deep.as_bytes(), &[]).is_err());
}
