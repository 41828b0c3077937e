use super::*;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::error::Error;
use std::fmt::Debug;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

type TestResult = Result<(), Box<dyn Error>>;

/// Reads `item` with [`from_item`], checking that `serde_dynamo` reads it the same way.
fn read<T: DeserializeOwned + PartialEq + Debug>(item: &Item) -> Result<T, DeError> {
    let ours = from_item::<T>(item);
    let theirs = serde_dynamo::from_item::<_, T>(item.clone());
    assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "ours: {ours:?}, serde_dynamo: {theirs:?}"
    );
    if let (Ok(ours), Ok(theirs)) = (&ours, &theirs) {
        assert_eq!(ours, theirs);
    }
    ours
}

fn item<const N: usize>(attributes: [(&str, AttributeValue); N]) -> Item {
    attributes
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

fn s(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_string())
}

fn n(n: &str) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn m<const N: usize>(attributes: [(&str, AttributeValue); N]) -> AttributeValue {
    AttributeValue::M(item(attributes))
}

fn l<const N: usize>(values: [AttributeValue; N]) -> AttributeValue {
    AttributeValue::L(values.into())
}

/// Binary data, which serializes as such (a `Vec<u8>` serializes as a list of numbers).
#[derive(Debug, Clone, PartialEq)]
struct Binary(Vec<u8>);

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BinaryVisitor;
        impl Visitor<'_> for BinaryVisitor {
            type Value = Binary;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("binary data")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Binary, E> {
                Ok(Binary(bytes.to_vec()))
            }
        }
        deserializer.deserialize_bytes(BinaryVisitor)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rich {
    name: String,
    letter: char,
    count: u32,
    delta: i64,
    big: u64,
    small: i8,
    ratio: f64,
    single: f32,
    flag: bool,
    maybe: Option<String>,
    maybe_number: Option<i32>,
    numbers: Vec<i16>,
    raw: Vec<u8>,
    blob: Binary,
    by_name: HashMap<String, Inner>,
    by_id: BTreeMap<u32, String>,
    by_offset: BTreeMap<i64, bool>,
    inner: Inner,
    shapes: Vec<Shape>,
    pair: (u8, String),
    marker: Marker,
    id: Id,
    point: Point,
    #[serde(with = "serde_dynamo::string_set")]
    tags: Vec<String>,
    #[serde(with = "serde_dynamo::number_set")]
    scores: Vec<u64>,
    #[serde(with = "serde_dynamo::binary_set")]
    blobs: Vec<Binary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inner {
    label: String,
    weights: Vec<f64>,
    shape: Option<Shape>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Segment(i32, i32),
    Rect { width: u16, height: u16 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Id(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point(i32, i32);

#[derive(Debug, PartialEq, Deserialize)]
struct Address {
    street: String,
    zip: u32,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Person {
    name: String,
    age: u8,
    address: Address,
}

#[test]
fn structs_read_from_maps_and_lists() -> TestResult {
    let person = item([
        ("name", s("Ada")),
        ("age", n("36")),
        ("unused", m([("deep", l([n("1"), s("x")]))])),
        (
            "address",
            m([("street", s("Main St")), ("zip", n("12345"))]),
        ),
    ]);
    let expected = Person {
        name: "Ada".into(),
        age: 36,
        address: Address {
            street: "Main St".into(),
            zip: 12345,
        },
    };
    assert_eq!(read::<Person>(&person)?, expected);

    // A struct can also be a list of its fields, in order.
    let listed = item([
        ("name", s("Ada")),
        ("age", n("36")),
        ("address", l([s("Main St"), n("12345")])),
    ]);
    assert_eq!(read::<Person>(&listed)?, expected);
    Ok(())
}

#[test]
fn nested_maps() -> TestResult {
    let value = item([
        ("a", m([("x", l([n("1"), n("-2")])), ("y", l([]))])),
        ("b", m([])),
    ]);
    let read = read::<HashMap<String, HashMap<String, Vec<i32>>>>(&value)?;
    assert_eq!(read.len(), 2);
    assert_eq!(read["a"]["x"], [1, -2]);
    assert!(read["a"]["y"].is_empty());
    assert!(read["b"].is_empty());
    Ok(())
}

#[test]
fn options() -> TestResult {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Optional {
        some: Option<u32>,
        none: Option<u32>,
        missing: Option<u32>,
        nested: Option<Option<String>>,
    }
    let value = item([
        ("some", n("7")),
        ("none", AttributeValue::Null(true)),
        ("nested", s("x")),
    ]);
    assert_eq!(
        read::<Optional>(&value)?,
        Optional {
            some: Some(7),
            none: None,
            missing: None,
            nested: Some(Some("x".into())),
        }
    );
    // `NULL: false` is not a null: it reads as `Some` of whatever it holds, here nothing.
    let value = item([("x", AttributeValue::Null(false))]);
    assert!(read::<HashMap<String, Option<u32>>>(&value).is_err());
    Ok(())
}

#[test]
fn enums_of_all_four_shapes() -> TestResult {
    let shapes = [
        (Shape::Empty, s("Empty")),
        (Shape::Circle(1.5), m([("Circle", n("1.5"))])),
        (
            Shape::Segment(-1, 2),
            m([("Segment", l([n("-1"), n("2")]))]),
        ),
        (
            Shape::Rect {
                width: 3,
                height: 4,
            },
            m([("Rect", m([("width", n("3")), ("height", n("4"))]))]),
        ),
    ];
    for (shape, attribute) in shapes {
        let value = item([("shape", attribute)]);
        assert_eq!(serde_dynamo::to_item::<_, Item>(&shape_of(&shape))?, value);
        assert_eq!(read::<HashMap<String, Shape>>(&value)?["shape"], shape);
    }

    // The item itself can be an enum, as a map with a single key.
    let circle = item([("Circle", n("2"))]);
    assert_eq!(read::<Shape>(&circle)?, Shape::Circle(2.0));

    // Like serde_dynamo, a unit variant may also come as a single-key map, whatever its value.
    let empty = item([("Empty", n("0"))]);
    assert_eq!(read::<Shape>(&empty)?, Shape::Empty);

    for wrong in [
        item([("Circle", n("1")), ("Empty", AttributeValue::Null(true))]),
        item([]),
        item([("Square", n("1"))]),
        item([("Circle", s("1"))]),
        item([("Rect", l([n("3"), n("4")]))]),
    ] {
        assert!(read::<Shape>(&wrong).is_err(), "{wrong:?}");
    }
    let unit_with_content = item([("shape", s("Circle"))]);
    assert!(read::<HashMap<String, Shape>>(&unit_with_content).is_err());
    Ok(())
}

fn shape_of(shape: &Shape) -> HashMap<&'static str, Shape> {
    [("shape", shape.clone())].into_iter().collect()
}

#[test]
fn sets_read_as_sequences() -> TestResult {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Sets {
        strings: Vec<String>,
        numbers: BTreeSet<i32>,
        big: Vec<u64>,
        binaries: Vec<Binary>,
        any: serde_json::Value,
    }
    let value = item([
        ("strings", AttributeValue::Ss(vec!["a".into(), "b".into()])),
        ("numbers", AttributeValue::Ns(vec!["3".into(), "-1".into()])),
        ("big", AttributeValue::Ns(vec![u64::MAX.to_string()])),
        (
            "binaries",
            AttributeValue::Bs(vec![Blob::new(vec![1, 2]), Blob::new(vec![])]),
        ),
        ("any", AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
    ]);
    assert_eq!(
        read::<Sets>(&value)?,
        Sets {
            strings: vec!["a".into(), "b".into()],
            numbers: [-1, 3].into_iter().collect(),
            big: vec![u64::MAX],
            binaries: vec![Binary(vec![1, 2]), Binary(vec![])],
            any: serde_json::json!([1, 2.5]),
        }
    );

    // Set elements are read as serde_dynamo reads them: numbers from number sets only.
    let value = item([("x", AttributeValue::Ns(vec!["1".into()]))]);
    assert!(read::<HashMap<String, Vec<String>>>(&value).is_err());
    let value = item([("x", AttributeValue::Ns(vec!["x".into()]))]);
    assert!(read::<HashMap<String, Vec<u8>>>(&value).is_err());
    Ok(())
}

#[test]
fn bytes() -> TestResult {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Data<'a> {
        owned: Binary,
        borrowed: &'a [u8],
        list: Vec<u8>,
    }
    let value = item([
        ("owned", AttributeValue::B(Blob::new(vec![0, 255]))),
        ("borrowed", AttributeValue::B(Blob::new(vec![7; 3]))),
        ("list", l([n("1"), n("2")])),
    ]);
    let data: Data<'_> = from_item(&value)?;
    assert_eq!(data.owned, Binary(vec![0, 255]));
    assert_eq!(data.borrowed, [7; 3]);
    assert_eq!(data.list, [1, 2]);
    if let Some(AttributeValue::B(b)) = value.get("borrowed") {
        assert!(std::ptr::eq(data.borrowed, b.as_ref()));
    }
    assert_eq!(
        read::<HashMap<String, Binary>>(&item([("x", AttributeValue::B(Blob::new(vec![9])))]))?
            ["x"],
        Binary(vec![9])
    );
    // Binary data is not a list, and a list is not binary data.
    assert!(read::<HashMap<String, Vec<u8>>>(&item([(
        "x",
        AttributeValue::B(Blob::new(vec![1]))
    )]))
    .is_err());
    assert!(read::<HashMap<String, Binary>>(&item([("x", l([n("1")]))])).is_err());
    Ok(())
}

#[test]
fn numbers() -> TestResult {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Numbers {
        big: u64,
        min: i64,
        small: i8,
        float: f64,
        single: f32,
        exponent: f64,
        whole: f64,
    }
    let value = item([
        ("big", n("18446744073709551615")),
        ("min", n("-9223372036854775808")),
        ("small", n("-128")),
        ("float", n("0.1")),
        ("single", n("2.5")),
        ("exponent", n("1e-7")),
        ("whole", n("3")),
    ]);
    assert_eq!(
        read::<Numbers>(&value)?,
        Numbers {
            big: u64::MAX,
            min: i64::MIN,
            small: -128,
            float: 0.1,
            single: 2.5,
            exponent: 1e-7,
            whole: 3.0,
        }
    );

    // Untyped reads try i64, then u64, then f64.
    let value = item([
        ("negative", n("-3")),
        ("big", n("18446744073709551615")),
        ("float", n("2.5")),
    ]);
    let any = read::<HashMap<String, serde_json::Value>>(&value)?;
    assert_eq!(any["negative"].as_i64(), Some(-3));
    assert_eq!(any["big"].as_u64(), Some(u64::MAX));
    assert_eq!(any["float"].as_f64(), Some(2.5));

    for (text, wrong) in [("300", "u8"), ("-1", "u32"), ("1.5", "i64"), ("x", "f64")] {
        let value = item([("x", n(text))]);
        let error = match wrong {
            "u8" => read::<HashMap<String, u8>>(&value).err(),
            "u32" => read::<HashMap<String, u32>>(&value).err(),
            "i64" => read::<HashMap<String, i64>>(&value).err(),
            _ => read::<HashMap<String, f64>>(&value).err(),
        };
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with(&format!("cannot read `{text}` as {wrong}")),
            "{message}"
        );
    }
    assert!(read::<HashMap<String, serde_json::Value>>(&item([("x", n("x"))])).is_err());
    // Like serde_dynamo, 128-bit integers are supported only as map keys.
    assert!(read::<HashMap<String, i128>>(&item([("x", n("1"))])).is_err());
    Ok(())
}

#[test]
fn integer_and_boolean_map_keys() -> TestResult {
    let value = item([("1", s("one")), ("40000", s("many"))]);
    let by_id = read::<BTreeMap<u32, String>>(&value)?;
    assert_eq!(
        by_id.into_iter().collect::<Vec<_>>(),
        [(1, "one".to_string()), (40000, "many".to_string())]
    );
    assert!(read::<BTreeMap<u8, String>>(&value).is_err());

    let value = item([("-5", AttributeValue::Bool(true))]);
    assert!(read::<HashMap<i64, bool>>(&value)?[&-5]);
    let huge = u128::MAX.to_string();
    let value = item([(huge.as_str(), AttributeValue::Null(true))]);
    assert_eq!(read::<HashMap<u128, ()>>(&value)?.len(), 1);
    let value = item([("true", n("1")), ("false", n("0"))]);
    assert_eq!(read::<BTreeMap<bool, u8>>(&value)?[&true], 1);

    let value = item([("x", s("one"))]);
    let message = read::<HashMap<u32, String>>(&value)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.starts_with("cannot read `x` as u32"), "{message}");

    // Keys also serve unit enum variants and newtype structs.
    #[derive(Debug, PartialEq, Eq, Hash, Deserialize)]
    struct Name(String);
    let value = item([("Empty", n("1"))]);
    assert_eq!(read::<HashMap<Name, u8>>(&value)?[&Name("Empty".into())], 1);
    #[derive(Debug, PartialEq, Eq, Hash, Deserialize)]
    enum Kind {
        Empty,
    }
    assert_eq!(read::<HashMap<Kind, u8>>(&value)?[&Kind::Empty], 1);
    Ok(())
}

#[test]
fn tuples() -> TestResult {
    let value = item([("t", l([n("1"), s("two"), AttributeValue::Bool(true)]))]);
    let read_tuple = read::<HashMap<String, (u8, String, bool)>>(&value)?;
    assert_eq!(read_tuple["t"], (1, "two".into(), true));
    let value = item([("p", l([n("-1"), n("2")]))]);
    assert_eq!(read::<HashMap<String, Point>>(&value)?["p"], Point(-1, 2));
    // Too few elements are an error; like serde_dynamo, extra ones are ignored.
    let value = item([("p", l([n("-1")]))]);
    assert!(read::<HashMap<String, Point>>(&value).is_err());
    let value = item([("p", l([n("-1"), n("2"), n("3")]))]);
    assert_eq!(read::<HashMap<String, Point>>(&value)?["p"], Point(-1, 2));
    Ok(())
}

#[test]
fn units_and_newtypes() -> TestResult {
    let value = item([("x", AttributeValue::Null(true))]);
    assert_eq!(read::<HashMap<String, Marker>>(&value)?["x"], Marker);
    assert_eq!(read::<HashMap<String, ()>>(&value)?["x"], ());
    let value = item([("x", AttributeValue::Null(false))]);
    assert!(read::<HashMap<String, Marker>>(&value).is_err());
    assert!(read::<HashMap<String, ()>>(&value).is_err());
    let value = item([("x", s("x"))]);
    assert!(read::<HashMap<String, Marker>>(&value).is_err());

    assert_eq!(read::<HashMap<String, Id>>(&value)?["x"], Id("x".into()));
    assert_eq!(read::<HashMap<String, char>>(&value)?["x"], 'x');
    for wrong in ["", "xy"] {
        assert!(read::<HashMap<String, char>>(&item([("x", s(wrong))])).is_err());
    }
    Ok(())
}

#[test]
fn borrowed_str_fields() -> TestResult {
    #[derive(Debug, Deserialize)]
    struct Borrowed<'a> {
        name: &'a str,
        #[serde(borrow)]
        nick: Cow<'a, str>,
        tags: Vec<&'a str>,
        #[serde(borrow)]
        by_key: HashMap<&'a str, &'a str>,
    }
    let value = item([
        ("name", s("Ada")),
        ("nick", s("A")),
        ("tags", AttributeValue::Ss(vec!["x".into(), "y".into()])),
        ("by_key", m([("k", s("v"))])),
    ]);
    let borrowed: Borrowed<'_> = from_item(&value)?;
    assert_eq!(borrowed.name, "Ada");
    assert!(matches!(borrowed.nick, Cow::Borrowed("A")));
    assert_eq!(borrowed.tags, ["x", "y"]);
    assert_eq!(borrowed.by_key.get("k"), Some(&"v"));
    if let Some(AttributeValue::S(name)) = value.get("name") {
        assert!(std::ptr::eq(borrowed.name, name.as_str()));
    }
    Ok(())
}

#[test]
fn type_mismatches_are_errors_naming_the_attribute() {
    let value = item([
        ("name", s("Ada")),
        ("age", n("36")),
        (
            "address",
            m([("street", s("Main St")), ("zip", s("12345"))]),
        ),
    ]);
    let message = read::<Person>(&value)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        message,
        "expected a number, found a string at `address.zip`"
    );

    let value = item([("lists", m([("b", l([n("1"), s("2")]))]))]);
    let message = read::<HashMap<String, HashMap<String, Vec<u32>>>>(&value)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(message, "expected a number, found a string at `lists.b[1]`");

    let value = item([("name", s("Ada")), ("age", n("36"))]);
    let message = read::<Person>(&value)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(message, "missing field `address`");

    let value = item([("shape", m([("Rect", m([("width", n("-1"))]))]))]);
    let message = read::<HashMap<String, Shape>>(&value)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.ends_with("at `shape.Rect.width`"), "{message}");

    for (value, wrong) in [
        (n("1"), "a string"),
        (s("1"), "a number"),
        (AttributeValue::Bool(true), "a list"),
        (l([]), "a map"),
        (m([]), "a boolean"),
    ] {
        let value = item([("x", value)]);
        let error = match wrong {
            "a string" => read::<HashMap<String, String>>(&value).err(),
            "a number" => read::<HashMap<String, u8>>(&value).err(),
            "a list" => read::<HashMap<String, Vec<u8>>>(&value).err(),
            "a map" => read::<HashMap<String, HashMap<String, u8>>>(&value).err(),
            _ => read::<HashMap<String, bool>>(&value).err(),
        };
        assert!(error.is_some(), "{value:?} read as {wrong}");
    }
}

#[test]
fn errors_are_plain_thread_safe_errors() {
    fn is_error<E: Error + Send + Sync + 'static>() {}
    is_error::<DeError>();
    let error = <DeError as de::Error>::custom("something went wrong");
    assert_eq!(error.to_string(), "something went wrong");
}

#[test]
fn unknown_attribute_types_are_errors() -> TestResult {
    let unknown = unknown_attribute()?;
    assert!(unknown.is_unknown());
    let value = item([
        ("name", s("Ada")),
        ("age", unknown.clone()),
        ("address", m([("street", s("x")), ("zip", n("1"))])),
    ]);
    let message = from_item::<Person>(&value)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.starts_with("expected a number, found an attribute of a type"));
    assert!(message.ends_with("at `age`"), "{message}");

    // Also when untyped, or skipped as an unknown field (which serde_dynamo checks too).
    let value = item([("x", l([unknown.clone()]))]);
    assert!(from_item::<serde_json::Value>(&value).is_err());
    assert!(from_item::<HashMap<String, Vec<u64>>>(&value).is_err());
    assert!(from_item::<HashMap<String, Option<u64>>>(&value).is_err());
    #[derive(Debug, Deserialize)]
    struct Nothing {}
    assert!(from_item::<Nothing>(&value).is_err());
    let value = item([("x", unknown)]);
    assert!(from_item::<Shape>(&value).is_err());
    Ok(())
}

/// An attribute of a type the SDK does not know, as the SDK reads one from DynamoDB.
///
/// `AttributeValue::Unknown` cannot be built outside the SDK, so this serves a `GetItem`
/// response with an attribute of a made-up type to the SDK, once, from a local socket.
fn unknown_attribute() -> Result<AttributeValue, Box<dyn Error>> {
    static UNKNOWN: OnceLock<Result<AttributeValue, String>> = OnceLock::new();
    UNKNOWN
        .get_or_init(|| fetch_unknown_attribute().map_err(|e| e.to_string()))
        .clone()
        .map_err(Into::into)
}

fn fetch_unknown_attribute() -> Result<AttributeValue, Box<dyn Error>> {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    // If the request never comes, this thread stays blocked in `accept`: it is not joined.
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        read_request(&mut stream)?;
        let body = r#"{"Item":{"future":{"XYZ":"?"}}}"#;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let output = runtime.block_on(
        aws_sdk_dynamodb::Client::from_conf(config)
            .get_item()
            .table_name("table")
            .key("key", s("key"))
            .send(),
    )?;
    server
        .join()
        .map_err(|_| "the test server thread panicked")??;
    output
        .item
        .and_then(|mut item| item.remove("future"))
        .ok_or_else(|| "the response has no attribute `future`".into())
}

/// Reads an HTTP request's head and its body, by its `Content-Length`.
fn read_request(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..read]);
        let Some(head_end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
        let body_len = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|len| len.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if request.len() >= head_end + 4 + body_len {
            return Ok(());
        }
    }
}

// Strategies.

fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

fn finite_f32() -> impl Strategy<Value = f32> {
    use proptest::num::f32::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

fn arb_shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        finite_f64().prop_map(Shape::Circle),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| Shape::Segment(a, b)),
        (any::<u16>(), any::<u16>()).prop_map(|(width, height)| Shape::Rect { width, height }),
    ]
}

fn arb_inner() -> impl Strategy<Value = Inner> {
    (
        ".{0,8}",
        proptest::collection::vec(finite_f64(), 0..4),
        proptest::option::of(arb_shape()),
    )
        .prop_map(|(label, weights, shape)| Inner {
            label,
            weights,
            shape,
        })
}

fn arb_binary() -> impl Strategy<Value = Binary> {
    proptest::collection::vec(any::<u8>(), 0..8).prop_map(Binary)
}

fn arb_rich() -> impl Strategy<Value = Rich> {
    use proptest::collection::{btree_map, hash_map, vec};
    let scalars = (
        ".{0,12}",
        any::<char>(),
        any::<u32>(),
        any::<i64>(),
        any::<u64>(),
        any::<i8>(),
        finite_f64(),
        finite_f32(),
        any::<bool>(),
    );
    let collections = (
        proptest::option::of(".{0,8}"),
        proptest::option::of(any::<i32>()),
        vec(any::<i16>(), 0..5),
        vec(any::<u8>(), 0..8),
        arb_binary(),
        hash_map(".{0,6}", arb_inner(), 0..3),
        btree_map(any::<u32>(), ".{0,6}", 0..4),
        btree_map(any::<i64>(), any::<bool>(), 0..4),
    );
    let nested = (
        arb_inner(),
        vec(arb_shape(), 0..4),
        (any::<u8>(), ".{0,6}"),
        ".{0,6}",
        (any::<i32>(), any::<i32>()),
        vec(".{0,6}", 0..3),
        vec(any::<u64>(), 0..3),
        vec(arb_binary(), 0..3),
    );
    (scalars, collections, nested).prop_map(
        |(
            (name, letter, count, delta, big, small, ratio, single, flag),
            (maybe, maybe_number, numbers, raw, blob, by_name, by_id, by_offset),
            (inner, shapes, pair, id, (x, y), tags, scores, blobs),
        )| Rich {
            name,
            letter,
            count,
            delta,
            big,
            small,
            ratio,
            single,
            flag,
            maybe,
            maybe_number,
            numbers,
            raw,
            blob,
            by_name,
            by_id,
            by_offset,
            inner,
            shapes,
            pair,
            marker: Marker,
            id: Id(id),
            point: Point(x, y),
            tags,
            scores,
            blobs,
        },
    )
}

/// Attribute names, mostly those of [`Rich`] and its parts, so that arbitrary trees get
/// past the first missing field now and then.
fn arb_name() -> impl Strategy<Value = String> {
    const NAMES: &str = "name letter count delta big small ratio single flag maybe \
        maybe_number numbers raw blob by_name by_id by_offset inner shapes pair marker id \
        point tags scores blobs label weights shape width height Empty Circle Segment Rect \
        0 7 -1 true";
    prop_oneof![
        4 => proptest::sample::select(NAMES.split_whitespace().collect::<Vec<_>>())
            .prop_map(String::from),
        1 => ".{0,4}",
    ]
}

/// Number texts, valid and not; none reads as NaN, so results compare equal.
fn arb_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<u8>().prop_map(|n| n.to_string()),
        finite_f64().prop_map(|n| n.to_string()),
        "[0-9a-f.+e-]{0,8}",
        Just("1e400".to_string()),
    ]
}

/// Arbitrary attributes other than lists and maps, with `unknown` among them if given.
fn arb_leaf(unknown: Option<AttributeValue>) -> BoxedStrategy<AttributeValue> {
    use proptest::collection::vec;
    let leaf = prop_oneof![
        prop_oneof![arb_name(), ".{0,4}"].prop_map(AttributeValue::S),
        arb_number().prop_map(AttributeValue::N),
        vec(any::<u8>(), 0..6).prop_map(|b| AttributeValue::B(Blob::new(b))),
        any::<bool>().prop_map(AttributeValue::Bool),
        any::<bool>().prop_map(AttributeValue::Null),
        vec(".{0,4}", 0..3).prop_map(AttributeValue::Ss),
        vec(arb_number(), 0..3).prop_map(AttributeValue::Ns),
        vec(vec(any::<u8>(), 0..4), 0..3)
            .prop_map(|v| AttributeValue::Bs(v.into_iter().map(Blob::new).collect())),
    ];
    match unknown {
        Some(unknown) => prop_oneof![8 => leaf, 1 => Just(unknown)].boxed(),
        None => leaf.boxed(),
    }
}

/// Arbitrary attribute trees, with `unknown` among the leaves if given.
fn arb_attribute(unknown: Option<AttributeValue>) -> impl Strategy<Value = AttributeValue> {
    use proptest::collection::{hash_map, vec};
    arb_leaf(unknown).prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(AttributeValue::L),
            hash_map(arb_name(), inner, 0..5).prop_map(AttributeValue::M),
        ]
    })
}

fn arb_item(unknown: Option<AttributeValue>) -> impl Strategy<Value = Item> {
    proptest::collection::hash_map(arb_name(), arb_attribute(unknown), 0..8)
}

/// Replaces the value found by following `path` (each step picks a map entry, by sorted
/// name, or a list element, modulo their number) with `with`.
fn replace(value: &mut AttributeValue, path: &[usize], with: AttributeValue) {
    match (path.split_first(), value) {
        (Some((step, rest)), AttributeValue::M(map)) if !map.is_empty() => {
            replace_in(map, *step, rest, with)
        }
        (Some((step, rest)), AttributeValue::L(list)) if !list.is_empty() => {
            let index = step % list.len();
            if let Some(element) = list.get_mut(index) {
                replace(element, rest, with);
            }
        }
        (_, value) => *value = with,
    }
}

fn replace_in(map: &mut Item, step: usize, rest: &[usize], with: AttributeValue) {
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    let Some(name) = names.get(step % names.len().max(1)).map(|n| n.to_string()) else {
        return;
    };
    if let Some(value) = map.get_mut(&name) {
        replace(value, rest, with);
    }
}

/// Both readers succeed with equal values, or both fail.
fn agree<T: DeserializeOwned + PartialEq + Debug>(item: &Item) -> Result<Option<T>, TestCaseError> {
    match (
        from_item::<T>(item),
        serde_dynamo::from_item::<_, T>(item.clone()),
    ) {
        (Ok(ours), Ok(theirs)) => {
            prop_assert_eq!(&ours, &theirs);
            Ok(Some(ours))
        }
        (Err(_), Err(_)) => Ok(None),
        (ours, theirs) => Err(TestCaseError::fail(format!(
            "ours: {ours:?}, serde_dynamo: {theirs:?}"
        ))),
    }
}

proptest! {
    #[test]
    fn values_read_back_as_serde_dynamo_reads_them(value in arb_rich()) {
        let item: Item = serde_dynamo::to_item(&value)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ours: Rich = from_item(&item).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let theirs: Rich = serde_dynamo::from_item(item.clone())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&ours, &theirs);
        prop_assert_eq!(&ours, &value);
    }

    #[test]
    fn altered_values_read_as_serde_dynamo_reads_them(
        value in arb_rich(),
        path in proptest::collection::vec(any::<usize>(), 1..5),
        with in prop_oneof![3 => arb_leaf(None), 1 => arb_attribute(None)],
    ) {
        let mut item: Item = serde_dynamo::to_item(&value)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        replace_in(&mut item, path[0], &path[1..], with);
        agree::<Rich>(&item)?;
    }

    #[test]
    fn arbitrary_items_read_as_serde_dynamo_reads_them(item in arb_item(None)) {
        agree::<Rich>(&item)?;
        agree::<HashMap<String, Vec<u64>>>(&item)?;
        agree::<HashMap<String, Shape>>(&item)?;
        agree::<Inner>(&item)?;
        agree::<Shape>(&item)?;
    }
}

#[test]
fn arbitrary_items_with_unknown_attributes_never_panic() -> TestResult {
    let unknown = unknown_attribute()?;
    TestRunner::default()
        .run(&arb_item(Some(unknown)), |item| {
            let _ = from_item::<Rich>(&item);
            let _ = from_item::<HashMap<String, Vec<u64>>>(&item);
            let _ = from_item::<serde_json::Value>(&item);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}
