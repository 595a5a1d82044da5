//! `webtune serve`: a small HTTP/1.1 server for the web app and a local Hugging Face hub mirror.
//!
//! - Static files from `--root` (`index.html` for a directory), with the MIME types browsers
//!   insist on (`application/wasm`, `text/javascript`) and, on every response, the headers that
//!   make the page cross-origin isolated (COOP/COEP/CORP) plus `Cache-Control: no-cache`.
//!   `--no-isolation` leaves COOP and COEP out (CORP stays): the page is then not cross-origin
//!   isolated, has no `SharedArrayBuffer`, and its worker loads the single-threaded build — how
//!   a host without those headers serves it (the end-to-end tests check that case).
//! - `GET|HEAD /hub/{repo}/resolve/main/{file}` serves `{models}/{repo}/{file}`, falling back to
//!   `{models}/{last segment of repo}/{file}`; 404s carry a text body and the hub's
//!   `X-Error-Code` header. Files stream from disk with `Content-Length` (and single `Range`s).
//! - With `--test-faults`: `/faulty-hub/{mode}/{repo}/resolve/main/{file}` where mode is `404`
//!   (always 404), `cut` (full `Content-Length`, about half the bytes, then the connection
//!   closes), `404-once` / `cut-once` (only the first request under that mode and repository
//!   fails, whichever file it asks for; `cut-once` counts GET requests only, since a HEAD has no
//!   body to cut). Per repository rather than per file: the worker fetches the three files in
//!   parallel and aborts the others when one fails, so a per-file fault could still be pending
//!   for a file whose first request never reached the server, and fail the user's retry.
//!
//! One thread per connection, keep-alive, one log line per request on stderr. The server is
//! written on `std::net` rather than a framework because the `cut` fault needs to close the
//! socket in the middle of a body, which tiny_http's API cannot do.
//!
//! It is meant for 127.0.0.1 but holds up against a misbehaving client all the same:
//! - at most `--max-connections` connections (threads) at once; beyond that a connection gets
//!   `503` with `Retry-After` from the accept loop and is closed;
//! - every request (head and any body, or the idle wait before it) must arrive within
//!   `--timeout`, however slowly it trickles in; every write to a client that stopped reading
//!   gives up after `--timeout`, and every response must be taken whole within
//!   `--response-timeout`, however steadily a slow client reads, so no client pins a thread;
//! - the request head is limited to 64 KiB, its method to an RFC 9110 token, its target to
//!   printable ASCII, a request body (to a GET or HEAD) to 64 KiB; what a malformed request
//!   sent is echoed only escaped and shortened;
//! - paths are percent-decoded into plain file names only (no `.`, `..`, separators, control
//!   characters), and a file is served only when its real path (symbolic links resolved) is
//!   inside the web root or the models folder; responses speak in URL terms: no error reveals a
//!   server-side path, and a directory redirect is built from the decoded path, so `//pkg` goes
//!   to `/pkg/`, never to the protocol-relative `//pkg/`.
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Port to listen on (0 = any free port; the URL is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Directory of the web app (index.html, pkg/, vendor/).
    #[arg(long, default_value = "www")]
    pub root: PathBuf,
    /// Directory of the local hub mirror: /hub/{repo}/resolve/main/{file} → {models}/{repo}/{file}.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Enable /faulty-hub/{404,cut,404-once,cut-once}/... (for the end-to-end tests).
    #[arg(long)]
    pub test_faults: bool,
    /// Leave out the COOP/COEP headers: the page is not cross-origin isolated, so it trains on
    /// one thread with the single-threaded wasm build (as on a host that cannot send them).
    #[arg(long)]
    pub no_isolation: bool,
    /// Most connections served at once; further ones are answered 503 (with Retry-After) and
    /// closed. Each connection has its own thread.
    #[arg(long, default_value = "64")]
    pub max_connections: NonZeroUsize,
    /// Seconds a connection may take to send a whole request (or idle between requests), and
    /// may leave a response unread, before it is closed.
    #[arg(long, default_value = "30")]
    pub timeout: NonZeroU64,
    /// Seconds a client may take to receive one whole response (a client reading slowly but
    /// steadily is closed after this, so it cannot hold a connection for ever).
    #[arg(long, default_value = "600")]
    pub response_timeout: NonZeroU64,
}

/// Longest request head (request line + headers) accepted, and longest request body.
const MAX_HEAD: u64 = 64 * 1024;

pub fn run(args: ServeArgs) -> Result<(), String> {
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // The first stderr line; the tests (and build.sh) read the URL from it.
    eprintln!(
        "webtune serve: listening on http://{addr}/ (root {}, models {}{}{})",
        args.root.display(),
        args.models.display(),
        if args.test_faults { ", test faults ON" } else { "" },
        if args.no_isolation { ", cross-origin isolation OFF (no COOP/COEP: one thread in the page)" } else { "" }
    );
    if !args.root.join("index.html").is_file() {
        eprintln!("warning: {} has no index.html; build the app first (./build.sh build)", args.root.display());
    }
    if !args.models.is_dir() {
        eprintln!("warning: models directory {} does not exist; the hub mirror will 404 (./build.sh model)", args.models.display());
    }
    let server = Arc::new(Server {
        root: args.root,
        models: args.models,
        test_faults: args.test_faults,
        isolation: !args.no_isolation,
        timeout: Duration::from_secs(args.timeout.get()),
        response_timeout: Duration::from_secs(args.response_timeout.get()),
        faulted_once: Mutex::new(HashSet::new()),
    });
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(stream) => stream,
            Err(e) => {
                // e.g. out of file descriptors: don't spin.
                eprintln!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        // Only this thread takes slots (the others only give theirs back), so the count cannot
        // pass the cap between the check and the take.
        if open.load(Ordering::SeqCst) >= args.max_connections.get() {
            refuse(&stream);
            continue;
        }
        let slot = Slot::take(&open);
        let server = Arc::clone(&server);
        // On failure the closure is dropped, and with it the slot and the connection.
        if let Err(e) = std::thread::Builder::new().spawn(move || {
            let _slot = slot;
            server.connection(stream)
        }) {
            eprintln!("cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

/// One of the `--max-connections` slots, given back when its connection's thread ends (also by
/// a panic).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Slot {
        open.fetch_add(1, Ordering::SeqCst);
        Slot(Arc::clone(open))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers a connection over the cap with 503 on the accept loop's thread. The response fits
/// in the new socket's empty send buffer, so the write doesn't block (and has a timeout anyway).
fn refuse(stream: &TcpStream) {
    let mut out = WriteDeadline::new(stream, Duration::from_secs(1), Duration::from_secs(1));
    let mut response = Response::closing(503, "too many connections at once; retry in a moment").header("Retry-After", "1");
    let (_, result) = write_response(&mut out, &Request::unknown(), &mut response, false, true);
    eprintln!("- - 503 (over --max-connections){}", if result.is_err() { " (write failed)" } else { "" });
    // Read what the client already sent, without waiting, so that closing sends a FIN rather
    // than a reset that could destroy the 503 before the client reads it.
    if stream.set_nonblocking(true).is_ok() {
        let _ = io::copy(&mut stream.take(MAX_HEAD), &mut io::sink());
    }
    let _ = stream.shutdown(Shutdown::Write);
}

struct Server {
    root: PathBuf,
    models: PathBuf,
    test_faults: bool,
    /// Send COOP/COEP (off with `--no-isolation`).
    isolation: bool,
    /// `--timeout`: for a whole request, and for each write of a response.
    timeout: Duration,
    /// `--response-timeout`: for a whole response.
    response_timeout: Duration,
    /// `/faulty-hub/{mode}/{repo}` prefixes that already had their `-once` fault.
    faulted_once: Mutex<HashSet<String>>,
}

/// The read side of a connection, with a deadline for the whole request rather than for each
/// read, so that a client sending a byte now and then cannot hold a connection open for ever.
struct Deadline {
    stream: TcpStream,
    until: Instant,
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

type Reader = BufReader<Deadline>;

/// The write side of a connection, for one response: each write may wait at most `per_write`
/// for a client that stopped reading, and all of them together at most until `until`, for a
/// client that reads slowly but steadily (each write then progresses, so a per-write timeout
/// alone would never fire).
struct WriteDeadline<'a> {
    stream: &'a TcpStream,
    per_write: Duration,
    until: Instant,
}

impl<'a> WriteDeadline<'a> {
    fn new(stream: &'a TcpStream, per_write: Duration, total: Duration) -> Self {
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

struct Request {
    method: String,
    target: String,
    http11: bool,
    headers: Vec<(String, String)>,
}

impl Request {
    /// Stands in for a request that could not be read (for the log and the response head).
    fn unknown() -> Request {
        Request { method: "-".into(), target: "-".into(), http11: true, headers: vec![] }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.http11 {
            !conn.contains("close")
        } else {
            conn.contains("keep-alive")
        }
    }
}

enum Body {
    Text(String),
    /// An open file, already positioned at the first byte to send.
    File { file: File, len: u64 },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Text(s) => s.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
    /// Send the full Content-Length but only about half of the body, then close (`cut` fault).
    cut: bool,
    /// Close the connection after this response.
    close: bool,
}

impl Response {
    fn new(status: u16, content_type: &str, body: Body) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body,
            cut: false,
            close: false,
        }
    }

    fn text(status: u16, message: impl Into<String>) -> Response {
        let mut message = message.into();
        message.push('\n');
        Response::new(status, "text/plain; charset=utf-8", Body::Text(message))
    }

    /// A text response after which the connection closes (e.g. because a body was not read).
    fn closing(status: u16, message: impl Into<String>) -> Response {
        Response { close: true, ..Response::text(status, message) }
    }

    /// A 404 the way the hub reports it: text body plus `X-Error-Code`.
    fn hub_error(code: &'static str, message: String) -> Response {
        let mut r = Response::text(404, message.clone());
        r.headers.push(("X-Error-Code", code.to_string()));
        r.headers.push(("X-Error-Message", message));
        r
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    fn is_file(&self) -> bool {
        matches!(self.body, Body::File { .. })
    }
}

fn reason(status: u16) -> &'static str {
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

/// MIME type by file extension.
fn mime_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" | "md" => "text/plain; charset=utf-8",
        "tsv" => "text/tab-separated-values; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Percent-decodes the path part of a request target into segments, refusing anything that
/// could leave the served directory (`.`/`..` segments, also when encoded, backslashes, or
/// anything else the platform would not read as one plain file name) and control characters.
fn path_segments(path: &str) -> Result<Vec<String>, &'static str> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("bad percent-encoding")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad percent-encoding")?;
            decoded.push(u8::from_str_radix(hex, 16).map_err(|_| "bad percent-encoding")?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(decoded).map_err(|_| "path is not UTF-8")?;
    if decoded.contains('\\') || decoded.chars().any(char::is_control) {
        // Control characters would also let a decoded name split a header line (X-Error-Message).
        return Err("backslash or control character in path");
    }
    let segments: Vec<String> = decoded.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let plain = |s: &String| {
        let mut parts = Path::new(s).components();
        matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None))
    };
    if !segments.iter().all(plain) {
        return Err("'.' or '..' in path");
    }
    Ok(segments)
}

/// Percent-encodes a decoded path segment for a URL (what is left as is can't end a segment).
fn encode_segment(segment: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
    segment.bytes().map(|b| if keep(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A single `Range: bytes=…` → `Some(Ok((start, len)))`; `Some(Err(()))` when unsatisfiable;
/// `None` to ignore it (absent, malformed or multi-range: the whole file is sent).
fn parse_range(header: Option<&str>, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        let n = n.min(size);
        return Some(Ok((size - n, n)));
    }
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() { u64::MAX } else { b.parse().ok()? };
    if end < start {
        return None;
    }
    if start >= size {
        return Some(Err(()));
    }
    let end = end.min(size - 1);
    Some(Ok((start, end - start + 1)))
}

/// Serves the file at `path` (under the served folder `base`), which the client knows as `url`:
/// errors name only the latter (the server-side path and the error go to the log). A file whose
/// real path, symbolic links resolved, is outside `base` is refused.
fn serve_file(base: &Path, path: &Path, url: &str, range: Option<&str>) -> Response {
    let failed = |e: io::Error| {
        eprintln!("cannot read {}: {e}", path.display());
        Response::text(500, format!("500 Internal Server Error: {url} exists but cannot be read"))
    };
    let real = match inside(base, path) {
        Ok(Some(real)) => real,
        Ok(None) => {
            eprintln!("refused {}: a symbolic link to outside {}", path.display(), base.display());
            return Response::text(403, format!("403 Forbidden: {url} links to outside the served folder"));
        }
        Err(e) => return failed(e),
    };
    let opened = File::open(&real).and_then(|f| f.metadata().map(|m| (f, m.len())));
    let (mut file, size) = match opened {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let mime = mime_type(path);
    match parse_range(range, size) {
        None => Response::new(200, mime, Body::File { file, len: size }),
        Some(Ok((start, len))) => {
            if let Err(e) = file.seek(SeekFrom::Start(start)) {
                return failed(e);
            }
            Response::new(206, mime, Body::File { file, len })
                .header("Content-Range", format!("bytes {start}-{}/{size}", start + len - 1))
        }
        Some(Err(())) => Response::text(416, format!("range not satisfiable: the file has {size} bytes"))
            .header("Content-Range", format!("bytes */{size}")),
    }
}

/// `path`'s real path (symbolic links resolved) when it lies inside `base`'s real path; `None`
/// when a link leads out of it. A link inside `base` to another place inside stays fine.
fn inside(base: &Path, path: &Path) -> io::Result<Option<PathBuf>> {
    let (base, real) = (std::fs::canonicalize(base)?, std::fs::canonicalize(path)?);
    Ok(real.starts_with(&base).then_some(real))
}

/// What a malformed request sent, for a message: shortened, everything but printable ASCII
/// escaped (no raw bytes reach the response or the log).
fn escaped(raw: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = raw.chars().take(MAX).flat_map(char::escape_default).collect();
    if raw.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// An RFC 9110 token (`1*tchar`), as a request method must be.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Server {
    fn connection(&self, stream: TcpStream) {
        // Reads time out through `Deadline`, writes through `WriteDeadline`.
        let _ = stream.set_nodelay(true);
        let mut reader = match stream.try_clone() {
            Ok(s) => BufReader::new(Deadline { stream: s, until: Instant::now() }),
            Err(_) => return,
        };
        loop {
            let started = Instant::now();
            reader.get_mut().until = started + self.timeout;
            let (request, mut response) = match read_request(&mut reader) {
                Ok(Some(Ok(request))) => {
                    let response = self.respond(&request, &mut reader);
                    (request, response)
                }
                Ok(Some(Err(bad))) => (Request::unknown(), Response { close: true, ..bad }),
                Ok(None) | Err(_) => return, // closed, timed out or I/O error
            };
            if !request.keep_alive() {
                response.close = true;
            }
            let head_only = request.method == "HEAD";
            let mut writer = WriteDeadline::new(&stream, self.timeout, self.response_timeout);
            let (sent, result) = write_response(&mut writer, &request, &mut response, head_only, self.isolation);
            let note = match &result {
                _ if response.cut => " (cut: connection closed)",
                Err(e) if e.kind() == io::ErrorKind::TimedOut => " (timed out: connection closed)",
                _ => "",
            };
            eprintln!(
                "{} {} {} {} bytes {} ms{note}",
                request.method,
                request.target,
                response.status,
                sent,
                started.elapsed().as_millis()
            );
            if result.is_err() || response.close || response.cut {
                let _ = stream.shutdown(Shutdown::Write);
                return;
            }
        }
    }

    fn respond(&self, request: &Request, reader: &mut Reader) -> Response {
        if request.method != "GET" && request.method != "HEAD" {
            // Closing: its body (if any) is not read.
            return Response::closing(405, format!("method {} not allowed: this server only serves GET and HEAD", request.method))
                .header("Allow", "GET, HEAD");
        }
        if request.header("transfer-encoding").is_some() {
            return Response::closing(501, "request bodies with Transfer-Encoding are not supported");
        }
        // A GET with a body: read and drop it so the connection stays usable.
        if let Some(length) = request.header("content-length") {
            let n = match length.parse::<u64>() {
                Ok(n) if n <= MAX_HEAD => n,
                Ok(_) => return Response::closing(413, "request body too large (GET and HEAD need none)"),
                Err(_) => return Response::closing(400, format!("bad Content-Length '{}'", escaped(length))),
            };
            if io::copy(&mut reader.by_ref().take(n), &mut io::sink()).map(|c| c != n).unwrap_or(true) {
                return Response::closing(400, "incomplete request body");
            }
        }
        let target = request.target.split('#').next().unwrap_or("");
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        if !path.starts_with('/') {
            return Response::text(400, format!("bad request target '{}': expected an absolute path", request.target));
        }
        let segments = match path_segments(path) {
            Ok(s) => s,
            Err(why) => return Response::text(400, format!("refused path '{path}': {why}")),
        };
        let range = request.header("range");
        match segments.first().map(String::as_str) {
            Some("hub") => self.hub(&segments[1..], range),
            Some("faulty-hub") if self.test_faults => self.faulty_hub(request, &segments[1..], range),
            Some("faulty-hub") => Response::text(404, "fault injection is off: start `webtune serve --test-faults` to use /faulty-hub/"),
            _ => self.static_file(path, query, &segments, range),
        }
    }

    fn static_file(&self, path: &str, query: Option<&str>, segments: &[String], range: Option<&str>) -> Response {
        let mut file = self.root.clone();
        file.extend(segments);
        if file.is_dir() {
            if !path.ends_with('/') {
                // From the decoded segments, not the raw path: `//pkg` + `/` would be a URL of
                // host `pkg`. Segments are never empty, so this never starts with `//`.
                let mut location: String = segments.iter().map(|s| format!("/{}", encode_segment(s))).collect();
                location.push('/');
                if let Some(query) = query {
                    location = format!("{location}?{query}");
                }
                return Response::text(301, format!("moved to {location}")).header("Location", location);
            }
            file.push("index.html");
        }
        if file.is_file() {
            serve_file(&self.root, &file, path, range)
        } else {
            Response::text(404, format!("404 Not Found: {path}"))
        }
    }

    /// `rest` = `{repo (1 or 2 segments)}/resolve/{revision}/{file…}`.
    fn hub(&self, rest: &[String], range: Option<&str>) -> Response {
        let resolve = rest.iter().position(|s| s == "resolve");
        let Some(i) = resolve.filter(|&i| (1..=2).contains(&i) && rest.len() >= i + 3) else {
            return Response::hub_error(
                "InvalidUrl",
                format!("Invalid hub URL '/{}': expected /hub/{{repo}}/resolve/{{revision}}/{{file}}", rest.join("/")),
            );
        };
        let repo = rest[..i].join("/");
        let revision = &rest[i + 1];
        let file = &rest[i + 2..];
        if revision != "main" {
            return Response::hub_error(
                "RevisionNotFound",
                format!("Revision Not Found for {repo}: this local mirror serves only revision 'main', not '{revision}'."),
            );
        }
        let mut candidates = vec![self.models.join(&repo)];
        if i == 2 {
            candidates.push(self.models.join(&rest[1]));
        }
        let dirs: Vec<&PathBuf> = candidates.iter().filter(|d| d.is_dir()).collect();
        if dirs.is_empty() {
            let tried = if i == 2 { format!("'{repo}' or '{}'", rest[1]) } else { format!("'{repo}'") };
            return Response::hub_error(
                "RepoNotFound",
                format!("Repository Not Found: '{repo}' is not in the local mirror (it has no folder {tried})."),
            );
        }
        let url = format!("/hub/{}", rest.join("/"));
        for dir in dirs {
            let mut path = dir.clone();
            path.extend(file);
            if path.is_file() {
                return serve_file(&self.models, &path, &url, range);
            }
        }
        Response::hub_error(
            "EntryNotFound",
            format!("Entry Not Found: '{}' is not in {repo} (revision main) of the local mirror.", file.join("/")),
        )
    }

    /// `rest` = `{mode}/{hub path}`.
    fn faulty_hub(&self, request: &Request, rest: &[String], range: Option<&str>) -> Response {
        let Some(mode) = rest.first() else {
            return Response::text(404, "expected /faulty-hub/{404|cut|404-once|cut-once}/{repo}/resolve/main/{file}");
        };
        let fault_key = request.target.split("/resolve/").next().unwrap_or(&request.target).to_string();
        let first_time = || self.faulted_once.lock().unwrap().insert(fault_key.clone());
        match mode.as_str() {
            "404" => Response::text(404, "Injected fault (404): this path always fails."),
            "404-once" if first_time() => Response::text(404, "Injected fault (404-once): the first request fails, retry."),
            "404-once" => self.hub(&rest[1..], range),
            "cut" | "cut-once" => {
                let mut r = self.hub(&rest[1..], range);
                if r.is_file() && request.method == "GET" && (mode == "cut" || first_time()) {
                    r.cut = true;
                }
                r
            }
            other => Response::text(404, format!("unknown fault mode '{other}': use 404, cut, 404-once or cut-once")),
        }
    }
}

/// Reads one request head. `Ok(None)`: the connection closed (or idled out) between requests;
/// `Ok(Some(Err(response)))`: a malformed request to answer with `response` and close.
fn read_request(reader: &mut Reader) -> io::Result<Option<Result<Request, Response>>> {
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
fn copy_file(file: &mut impl Read, out: &mut WriteDeadline<'_>) -> io::Result<u64> {
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
fn write_response(
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
