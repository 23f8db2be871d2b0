//! Talking to a node's HTTP API (API.md) from a test: plain HTTP/1.1 over
//! a TCP stream, one request per connection (nothing the node's own client
//! code does is reused, so a bug there cannot hide one in the server), and
//! `/metrics` read with a real Prometheus text parser.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Longest wait for an answer.
const T: Duration = Duration::from_secs(60);

/// An HTTP response: status and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The body, as bytes.
    pub bytes: Vec<u8>,
    /// The body as text (lossy).
    pub body: String,
}

impl Response {
    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `<method> <base><path>` with a JSON `body` if given, and
/// `Authorization: Bearer <token>` when given.
pub fn request(method: &str, base: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    request_with(method, base, path, &headers, body)
}

/// `<method> <base><path>` with `headers` and a JSON `body` if given.
pub fn request_with(method: &str, base: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
    let host = base.strip_prefix("http://").expect("an http:// URL");
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connecting to {base}: {e}"));
    stream.set_read_timeout(Some(T)).unwrap();
    let auth: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let body = body.unwrap_or_default();
    let content = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len())
    };
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}{content}Connection: close\r\n\r\n{body}")
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap_or_else(|e| panic!("reading the answer to {method} {path}: {e}"));
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no end of headers: {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "a chunked body: {head}");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status: {head}"));
    let bytes = raw[split + 4..].to_vec();
    Response { status, head, body: String::from_utf8_lossy(&bytes).into_owned(), bytes }
}

/// `GET <base><path>`.
pub fn get(base: &str, path: &str, token: Option<&str>) -> Response {
    request("GET", base, path, token, None)
}

/// `POST <base><path>` with a JSON body.
pub fn post(base: &str, path: &str, body: &serde_json::Value) -> Response {
    request("POST", base, path, None, Some(&body.to_string()))
}

/// `/metrics` of the node at `base`, parsed by a real Prometheus text parser.
pub fn scrape(base: &str) -> prometheus_parse::Scrape {
    let r = get(base, "/metrics", None);
    assert_eq!(r.status, 200, "{}", r.body);
    prometheus_parse::Scrape::parse(r.body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

/// The value of the sample `name{labels}` (0 when absent: a counter not yet moved).
pub fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample =
        scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    match sample.map(|s| &s.value) {
        None => 0.0,
        Some(
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v),
        ) => *v,
        Some(other) => panic!("{name} is not a number: {other:?}"),
    }
}
