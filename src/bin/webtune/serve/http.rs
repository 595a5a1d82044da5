//! The HTTP/1.1 wire of `webtune serve`: reading a request head within a deadline, the
//! response type, and writing a response within its deadlines.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Longest request head (request line + headers) accepted, and longest request body.
pub(super) const MAX_HEAD: u64 = 64 * 1024;

/// The read side of a connection, with a deadline for the whole request rather than for each
/// read, so that a client sending a byte now and then cannot hold a connection open for ever.
pub(super) struct Deadline {
    pub(super) stream: TcpStream,
    pub(super) until: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

pub(super) type Reader = BufReader<Deadline>;

/// The write side of a connection, for one response: each write may wait at most `per_write`
/// for a client that stopped reading, and all of them together at most until `until`, for a
/// client that reads slowly but steadily (each write then progresses, so a per-write timeout
/// alone would never fire).
pub(super) struct WriteDeadline<'a> {
    pub(super) stream: &'a TcpStream,
    pub(super) per_write: Duration,
    pub(super) until: Instant,
}

impl<'a> WriteDeadline<'a> {
    pub(super) fn new(stream: &'a TcpStream, per_write: Duration, total: Duration) -> Self {
        WriteDeadline { stream, per_write, until: Instant::now() + total }
    }
}

impl Write for WriteDeadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "response deadline passed"));
        }
        self.stream.set_write_timeout(Some(left.min(self.per_write)))?;
        // On a blocking socket, WouldBlock means that the write timeout passed.
        self.stream.write(buf).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::new(io::ErrorKind::TimedOut, "the client did not take the response in time"),
            _ => e,
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    http11: bool,
    pub(super) headers: Vec<(String, String)>,
}

impl Request {
    /// Stands in for a request that could not be read (for the log and the response head).
    pub(super) fn unknown() -> Request {
        Request { method: "-".into(), target: "-".into(), http11: true, headers: vec![] }
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(super) fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.http11 {
            !conn.contains("close")
        } else {
            conn.contains("keep-alive")
        }
    }
}

pub(super) enum Body {
    Text(String),
    /// An open file, already positioned at the first byte to send.
    File { file: File, len: u64 },
}

impl Body {
    pub(super) fn len(&self) -> u64 {
        match self {
            Body::Text(s) => s.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Body,
    /// Send the full Content-Length but only about half of the body, then close (`cut` fault).
    pub(super) cut: bool,
    /// Close the connection after this response.
    pub(super) close: bool,
}

impl Response {
    pub(super) fn new(status: u16, content_type: &str, body: Body) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body,
            cut: false,
            close: false,
        }
    }

    pub(super) fn text(status: u16, message: impl Into<String>) -> Response {
        let mut message = message.into();
        message.push('\n');
        Response::new(status, "text/plain; charset=utf-8", Body::Text(message))
    }

    /// A text response after which the connection closes (e.g. because a body was not read).
    pub(super) fn closing(status: u16, message: impl Into<String>) -> Response {
        Response { close: true, ..Response::text(status, message) }
    }

    /// A 404 the way the hub reports it: text body plus `X-Error-Code`.
    pub(super) fn hub_error(code: &'static str, message: String) -> Response {
        let mut r = Response::text(404, message.clone());
        r.headers.push(("X-Error-Code", code.to_string()));
        r.headers.push(("X-Error-Message", message));
        r
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn is_file(&self) -> bool {
        matches!(self.body, Body::File { .. })
    }
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// What a malformed request sent, for a message: shortened, everything but printable ASCII
/// escaped (no raw bytes reach the response or the log).
pub(super) fn escaped(raw: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = raw.chars().take(MAX).flat_map(char::escape_default).collect();
    if raw.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// An RFC 9110 token (`1*tchar`), as a request method must be.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads one request head. `Ok(None)`: the connection closed (or idled out) between requests;
/// `Ok(Some(Err(response)))`: a malformed request to answer with `response` and close.
pub(super) fn read_request(reader: &mut Reader) -> io::Result<Option<Result<Request, Response>>> {
    let mut lines: Vec<String> = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let mut line = Vec::new();
        let n = reader.by_ref().take(budget).read_until(b'\n', &mut line)?;
        if n == 0 {
            if lines.is_empty() && budget == MAX_HEAD {
                return Ok(None);
            }
            let status = if budget == 0 { 431 } else { 400 };
            return Ok(Some(Err(Response::text(status, "incomplete or oversized request head"))));
        }
        budget -= n as u64;
        if line.last() != Some(&b'\n') {
            if budget == 0 {
                return Ok(Some(Err(Response::text(431, "request head too large"))));
            }
            return Ok(None); // EOF in the middle of a line
        }
        let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerate blank lines before a request (RFC 9112 §2.2)
            }
            break;
        }
        lines.push(line);
    }
    let mut parts = lines[0].split_whitespace();
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Ok(Some(Err(Response::text(400, format!("malformed request line '{}'", escaped(&lines[0]))))));
    };
    if !is_token(method) {
        return Ok(Some(Err(Response::text(400, "the request method must be a token (RFC 9110: letters, digits, !#$%&'*+-.^_`|~)"))));
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(Some(Err(Response::text(400, "the request target must be printable ASCII (percent-encode the rest)"))));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => return Ok(Some(Err(Response::text(505, "only HTTP/1.0 and HTTP/1.1 are supported")))),
        _ => return Ok(Some(Err(Response::text(400, format!("malformed request line '{}'", escaped(&lines[0])))))),
    };
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            return Ok(Some(Err(Response::text(400, format!("malformed header line '{}'", escaped(line))))));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(Some(Ok(Request { method: method.to_string(), target: target.to_string(), http11, headers })))
}

/// Copies a file to the client in large writes, each under the response's deadline.
pub(super) fn copy_file(file: &mut impl Read, out: &mut WriteDeadline<'_>) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(sent),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        sent += n as u64;
    }
}

/// Writes the response; returns the body bytes sent and whether everything went out.
/// `isolation`: send COOP/COEP (cross-origin isolation); CORP is sent either way.
pub(super) fn write_response(
    out: &mut WriteDeadline<'_>,
    request: &Request,
    response: &mut Response,
    head_only: bool,
    isolation: bool,
) -> (u64, io::Result<()>) {
    let len = response.body.len();
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {len}\r\n"));
    if matches!(response.body, Body::File { .. }) {
        head.push_str("Accept-Ranges: bytes\r\n");
    }
    if isolation {
        head.push_str("Cross-Origin-Opener-Policy: same-origin\r\n");
        head.push_str("Cross-Origin-Embedder-Policy: require-corp\r\n");
    }
    head.push_str("Cross-Origin-Resource-Policy: same-origin\r\n");
    head.push_str("Cache-Control: no-cache\r\n");
    head.push_str("X-Content-Type-Options: nosniff\r\n");
    head.push_str("Server: webtune\r\n");
    if response.close || response.cut {
        head.push_str("Connection: close\r\n");
    } else if !request.http11 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    if let Err(e) = out.write_all(head.as_bytes()) {
        return (0, Err(e));
    }
    if head_only {
        return (0, out.flush());
    }
    let to_send = if response.cut { len / 2 } else { len };
    let result = match &mut response.body {
        Body::Text(s) => out.write_all(&s.as_bytes()[..to_send as usize]).map(|_| to_send),
        Body::File { file, .. } => copy_file(&mut file.take(to_send), out),
    };
    match result {
        // A file that shrank under us: the promised Content-Length can't be kept, so close.
        Ok(sent) if sent < to_send => (sent, Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while sending"))),
        Ok(sent) => (sent, out.flush()),
        Err(e) => (0, Err(e)),
    }
}
