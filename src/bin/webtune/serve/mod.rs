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
use std::io::{self, BufReader, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;

mod files;
mod http;

use files::{encode_segment, path_segments, serve_file};
use http::{escaped, read_request, write_response, Deadline, Reader, Request, Response, WriteDeadline, MAX_HEAD};

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
