//! Native tests of `webtune serve`: the built binary on a free port, against a temporary web
//! root and models directory, spoken to over plain TCP (so nothing normalises the paths sent).
#![cfg(not(target_arch = "wasm32"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// A temporary directory: `www/` (the root), `models/`, and a secret file beside them.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "webtune-serve-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let f = Fixture { dir };
        f.write("secret.txt", SECRET.as_bytes());
        f.write("www/index.html", b"<!doctype html><title>webtune</title>");
        f.write("www/app.js", b"export const x = 1;");
        f.write("www/worker.mjs", b"self.onmessage = () => {};");
        f.write("www/style.css", b"body { margin: 0 }");
        f.write("www/data.json", b"{\"a\": 1}");
        f.write("www/pkg/webtune_bg.wasm", b"\0asm\x01\0\0\0");
        f.write("www/pkg/webtune.js.map", b"{}");
        f.write("www/img/logo.png", b"\x89PNG\r\n\x1a\n");
        f.write("www/img/icon.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
        f.write("www/sub/index.html", b"sub index");
        f.write("models/all-MiniLM-L6-v2/config.json", b"{\"hidden_size\": 384}");
        f.write("models/all-MiniLM-L6-v2/model.safetensors", &big_bytes(200_000));
        f.write("models/acme/tiny-bert/config.json", b"{\"owner\": \"acme\"}");
        f
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn big_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// The server process; killed on drop. Its stderr lines are collected in `log`.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(f: &Fixture, test_faults: bool) -> Server {
        Server::start_with(f, if test_faults { &["--test-faults"] } else { &[] })
    }

    /// With more `webtune serve` arguments (e.g. `--max-connections 3 --timeout 2`).
    fn start_with(f: &Fixture, extra: &[&str]) -> Server {
        Server::start_in(&f.path("www"), &f.path("models"), extra)
    }

    /// Serving `root` and `models`.
    fn start_in(root: &Path, models: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_webtune"));
        cmd.args(["serve", "--port", "0", "--root"]).arg(root).arg("--models").arg(models).args(extra);
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start webtune serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in the first stderr line: {first:?}"));
        let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();
        let log = Arc::new(Mutex::new(vec![first.trim_end().to_string()]));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in stderr.lines() {
                match line {
                    Ok(l) => sink.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
        Server { child, addr, log }
    }

    fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[])
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.raw(req.as_bytes())
    }

    /// Sends `bytes` on a new connection and reads the response until the server closes it.
    fn raw(&self, bytes: &[u8]) -> Resp {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.write_all(bytes).unwrap();
        read_to_close(s, Duration::from_secs(20))
    }

    /// Waits (briefly) for a log line containing all of `parts`.
    fn wait_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.clone();
            }
            if Instant::now() > deadline {
                panic!("no log line with {parts:?} in {:#?}", self.log.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads a response until the server closes the connection; panics after `timeout`.
fn read_to_close(mut s: TcpStream, timeout: Duration) -> Resp {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut raw = Vec::new();
    // A cut connection may end in a reset; keep what arrived.
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no complete response within {timeout:?} ({e}); so far: {:?}", String::from_utf8_lossy(&raw)),
        }
    }
    Resp::parse(&raw)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn parse(raw: &[u8]) -> Resp {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
        let head = std::str::from_utf8(&raw[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Resp { status, headers, body: raw[end + 4..].to_vec() }
    }

    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> usize {
        self.header("content-length").expect("Content-Length").parse().unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn assert_isolation_headers(r: &Resp, what: &str) {
    assert_eq!(r.header("cross-origin-opener-policy"), Some("same-origin"), "{what}");
    assert_eq!(r.header("cross-origin-embedder-policy"), Some("require-corp"), "{what}");
    assert_eq!(r.header("cross-origin-resource-policy"), Some("same-origin"), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-cache"), "{what}");
}

#[test]
fn static_files_have_mime_types_and_isolation_headers() {
    let f = Fixture::new();
    let s = Server::start(&f, false);
    let cases: &[(&str, &str, &[u8])] = &[
        ("/", "text/html", b"<!doctype html><title>webtune</title>"),
        ("/index.html", "text/html", b"<!doctype html><title>webtune</title>"),
        ("/app.js", "text/javascript", b"export const x = 1;"),
        ("/worker.mjs", "text/javascript", b"self.onmessage = () => {};"),
        ("/style.css", "text/css", b"body { margin: 0 }"),
        ("/data.json", "application/json", b"{\"a\": 1}"),
        ("/pkg/webtune_bg.wasm", "application/wasm", b"\0asm\x01\0\0\0"),
        ("/pkg/webtune.js.map", "application/json", b"{}"),
        ("/img/logo.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        ("/img/icon.svg", "image/svg+xml", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
        ("/sub/", "text/html", b"sub index"),
        ("/app.js?v=123", "text/javascript", b"export const x = 1;"),
    ];
    for &(path, mime, body) in cases {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let ct = r.header("content-type").unwrap();
        assert!(ct.starts_with(mime), "{path}: content-type {ct}, want {mime}");
        assert_eq!(r.body, body, "{path}");
        assert_eq!(r.content_length(), body.len(), "{path}");
        assert_isolation_headers(&r, path);
    }
    // A directory without its slash redirects, so relative URLs in its index work.
    let r = s.get("/sub");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/sub/"));
    // 404s carry the headers too, and a text body.
    let r = s.get("/nope.js");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("/nope.js"), "{}", r.text());
    assert_isolation_headers(&r, "404");
    // Only GET and HEAD.
    let r = s.request("POST", "/index.html", &[("Content-Length", "0")]);
    assert_eq!(r.status, 405);
    // One log line per request: method, path, status, bytes.
    let line = s.wait_log(&["GET /pkg/webtune_bg.wasm 200 8 bytes"]);
    assert!(line.starts_with("GET "), "{line}");
    s.wait_log(&["GET /nope.js 404"]);
}

#[test]
fn no_isolation_leaves_out_coop_and_coep() {
    // `--no-isolation`: the page must not be cross-origin isolated (it then runs the
    // single-threaded wasm build), on every kind of response; the rest is unchanged.
    let f = Fixture::new();
    let s = Server::start_with(&f, &["--no-isolation"]);
    assert!(s.wait_log(&["listening on"]).contains("cross-origin isolation OFF"));
    for path in ["/", "/app.js", "/pkg/webtune_bg.wasm", "/nope.js", "/hub/all-MiniLM-L6-v2/resolve/main/config.json"] {
        let r = s.get(path);
        assert_eq!(r.header("cross-origin-opener-policy"), None, "{path}");
        assert_eq!(r.header("cross-origin-embedder-policy"), None, "{path}");
        assert_eq!(r.header("cross-origin-resource-policy"), Some("same-origin"), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
    }
    let r = s.get("/app.js");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"export const x = 1;");
    // Without the flag the same server isolates (the default the app's threads rely on).
    let isolated = Server::start(&f, false);
    assert!(!isolated.wait_log(&["listening on"]).contains("isolation OFF"));
    assert_isolation_headers(&isolated.get("/app.js"), "default");
}

#[test]
fn hub_mirror_serves_both_repo_forms() {
    let f = Fixture::new();
    let s = Server::start(&f, false);
    let model = std::fs::read(f.path("models/all-MiniLM-L6-v2/model.safetensors")).unwrap();
    for path in [
        "/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main/model.safetensors",
        "/hub/all-MiniLM-L6-v2/resolve/main/model.safetensors",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.content_length(), model.len(), "{path}");
        assert!(r.body == model, "{path}: body differs");
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_isolation_headers(&r, path);
    }
    let r = s.get("/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main/config.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{\"hidden_size\": 384}");
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    // An owner/name folder is found as such.
    let r = s.get("/hub/acme/tiny-bert/resolve/main/config.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{\"owner\": \"acme\"}");
    // HEAD: the size without the body.
    let r = s.request("HEAD", "/hub/all-MiniLM-L6-v2/resolve/main/model.safetensors", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), model.len());
    assert!(r.body.is_empty());
    // Ranges (resuming a download).
    let r = s.request("GET", "/hub/all-MiniLM-L6-v2/resolve/main/model.safetensors", &[("Range", "bytes=100-199")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &model[100..200]);
    assert_eq!(r.header("content-range").unwrap(), format!("bytes 100-199/{}", model.len()));
    let r = s.request("GET", "/hub/all-MiniLM-L6-v2/resolve/main/model.safetensors", &[("Range", "bytes=-10")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &model[model.len() - 10..]);
    let r = s.request("GET", "/hub/all-MiniLM-L6-v2/resolve/main/config.json", &[("Range", "bytes=5000-")]);
    assert_eq!(r.status, 416);
}

#[test]
fn hub_mirror_404s_say_what_is_missing() {
    let f = Fixture::new();
    let s = Server::start(&f, false);
    let cases = [
        ("/hub/nobody/no-such-model/resolve/main/config.json", "no-such-model", "RepoNotFound"),
        ("/hub/all-MiniLM-L6-v2/resolve/main/pytorch_model.bin", "pytorch_model.bin", "EntryNotFound"),
        ("/hub/all-MiniLM-L6-v2/resolve/v1.0/config.json", "main", "RevisionNotFound"),
        ("/hub/all-MiniLM-L6-v2/config.json", "resolve", "InvalidUrl"),
    ];
    for (path, mention, code) in cases {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/plain"), "{path}");
        assert!(r.text().contains(mention), "{path}: body {:?} should mention {mention}", r.text());
        assert_eq!(r.header("x-error-code"), Some(code), "{path}");
        assert_eq!(r.content_length(), r.body.len(), "{path}");
        assert_isolation_headers(&r, path);
    }
}

#[test]
fn path_traversal_is_refused() {
    let f = Fixture::new();
    let s = Server::start(&f, true);
    let root_abs = f.path("secret.txt");
    let absolute = format!("/{}", root_abs.display());
    let paths = [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/sub/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "/./../secret.txt",
        "//../secret.txt",
        absolute.as_str(),
        "/hub/all-MiniLM-L6-v2/resolve/main/../../../secret.txt",
        "/hub/all-MiniLM-L6-v2/resolve/main/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
        "/hub/..%2f..%2f/resolve/main/secret.txt",
        "/faulty-hub/cut/all-MiniLM-L6-v2/resolve/main/..%2f..%2f..%2fsecret.txt",
        "/%zz/secret.txt",
    ];
    for path in paths {
        let r = s.get(path);
        assert!(r.status == 400 || r.status == 404, "{path}: status {}", r.status);
        assert!(!r.text().contains(SECRET), "{path} leaked the secret");
    }
    // A decoded CR LF must not become a header line.
    let r = s.get("/hub/all-MiniLM-L6-v2/resolve/%0d%0aX-Injected:%20yes/config.json");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-injected"), None);
    // Sanity: the secret is a real file one level above the root.
    assert_eq!(std::fs::read_to_string(Path::new(&root_abs)).unwrap(), SECRET);
}

#[test]
fn faults_cut_and_404_then_recover() {
    let f = Fixture::new();
    let s = Server::start(&f, true);
    let model = std::fs::read(f.path("models/all-MiniLM-L6-v2/model.safetensors")).unwrap();
    let file = "sentence-transformers/all-MiniLM-L6-v2/resolve/main/model.safetensors";

    // cut: full Content-Length, fewer bytes, every time.
    for _ in 0..2 {
        let r = s.get(&format!("/faulty-hub/cut/{file}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.content_length(), model.len());
        assert!(!r.body.is_empty() && r.body.len() < model.len(), "cut sent {} of {}", r.body.len(), model.len());
        assert_eq!(r.body, &model[..r.body.len()], "a cut body is a prefix of the file");
    }
    s.wait_log(&["/faulty-hub/cut/", "cut"]);

    // cut-once: a HEAD doesn't use up the fault; the first GET is cut, the retry is whole.
    let once = format!("/faulty-hub/cut-once/{file}");
    let r = s.request("HEAD", &once, &[]);
    assert_eq!((r.status, r.content_length()), (200, model.len()));
    let r = s.get(&once);
    assert_eq!(r.content_length(), model.len());
    assert!(r.body.len() < model.len(), "first cut-once request should be cut");
    let r = s.get(&once);
    assert_eq!(r.status, 200);
    assert!(r.body == model, "second cut-once request should be complete");

    // 404: always.
    for _ in 0..2 {
        let r = s.get(&format!("/faulty-hub/404/{file}"));
        assert_eq!(r.status, 404);
        assert_eq!(r.content_length(), r.body.len());
    }
    // 404-once: the first request under the repository fails (whichever file), then all succeed.
    let once = format!("/faulty-hub/404-once/{file}");
    let config_once = once.replace("model.safetensors", "config.json");
    assert_ne!(config_once, once, "the fault test file is model.safetensors");
    assert_eq!(s.get(&config_once).status, 404);
    let r = s.get(&once);
    assert_eq!(r.status, 200);
    assert!(r.body == model);
    assert_eq!(s.get(&config_once).status, 200);
    // A fault path on a missing file is a plain 404.
    assert_eq!(s.get("/faulty-hub/cut/all-MiniLM-L6-v2/resolve/main/missing.bin").status, 404);
    assert_eq!(s.get("/faulty-hub/bogus/all-MiniLM-L6-v2/resolve/main/config.json").status, 404);
}

#[test]
fn faults_are_off_by_default() {
    let f = Fixture::new();
    let s = Server::start(&f, false);
    let r = s.get("/faulty-hub/cut/all-MiniLM-L6-v2/resolve/main/model.safetensors");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("--test-faults"), "{}", r.text());
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let f = Fixture::new();
    let s = Server::start(&f, false);
    let mut conn = TcpStream::connect(&s.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for (path, want) in [("/app.js", "export const x = 1;"), ("/style.css", "body { margin: 0 }"), ("/app.js", "export const x = 1;")] {
        write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut len = None;
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = Some(v.trim().parse::<usize>().unwrap());
            }
        }
        let mut body = vec![0; len.expect("Content-Length")];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(body, want.as_bytes());
    }
    conn.shutdown(Shutdown::Both).unwrap();
}

#[test]
fn a_big_download_does_not_block_other_requests() {
    let f = Fixture::new();
    // Bigger than the socket buffers, so the server's writer blocks on the unread connection.
    f.write("models/big/model.safetensors", &big_bytes(64 << 20));
    let s = Server::start(&f, false);
    let mut stalled = TcpStream::connect(&s.addr).unwrap();
    write!(stalled, "GET /hub/big/resolve/main/model.safetensors HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let r = s.get("/index.html");
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "blocked for {:?}", started.elapsed());
    // And the big one is really streaming with its full length announced.
    let mut head = [0u8; 512];
    let n = stalled.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.contains(&format!("Content-Length: {}", 64 << 20)), "{head}");
}

#[test]
fn connections_beyond_the_cap_get_503() {
    let f = Fixture::new();
    let s = Server::start_with(&f, &["--max-connections", "3"]);
    // Three idle connections take every slot (the server accepts in order, so before the rest).
    let mut idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&s.addr).unwrap()).collect();
    // Further connections are answered at once, without a thread, and closed.
    for i in 0..3 {
        let r = read_to_close(TcpStream::connect(&s.addr).unwrap(), Duration::from_secs(5));
        assert_eq!(r.status, 503, "extra connection {i}: {}", r.text());
        assert!(r.header("retry-after").is_some(), "{r:?}");
        assert_eq!(r.content_length(), r.body.len());
        assert_isolation_headers(&r, "503");
    }
    s.wait_log(&["503", "--max-connections"]);
    // The idle ones are still served.
    let mut first = idle.remove(0);
    write!(first, "GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let r = read_to_close(first, Duration::from_secs(5));
    assert_eq!((r.status, r.text().as_str()), (200, "export const x = 1;"));
    // Closing a connection gives its slot back.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.get("/app.js").status != 200 {
        assert!(Instant::now() < deadline, "the closed connections' slots did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_the_timeout() {
    let f = Fixture::new();
    // Bigger than the socket buffers, so the server's writes block on the unread connections.
    f.write("models/big/model.safetensors", &big_bytes(64 << 20));
    let s = Server::start_with(&f, &["--max-connections", "2", "--timeout", "3"]);
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            write!(c, "GET /hub/big/resolve/main/model.safetensors HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            c
        })
        .collect();
    // Both slots are held by the stalled downloads…
    assert_eq!(s.get("/index.html").status, 503);
    // …until their writes time out, freeing the threads: then requests are served again.
    let started = Instant::now();
    while s.get("/index.html").status != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "the stalled readers still hold their threads");
        std::thread::sleep(Duration::from_millis(200));
    }
    let line = s.wait_log(&["GET /hub/big/resolve/main/model.safetensors 200"]);
    assert!(!line.contains(&format!(" {} bytes", 64 << 20)), "the stalled download cannot have completed: {line}");
    drop(stalled);
}

#[test]
fn a_request_trickling_in_is_cut_off_at_the_timeout() {
    let f = Fixture::new();
    let s = Server::start_with(&f, &["--timeout", "2"]);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(b"GET /index.html HTTP/1.1\r\nX-Slow: ").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let started = Instant::now();
    // A byte every 300 ms never lets a single read wait 2 s, but the whole head is due in 2 s.
    let closed = loop {
        if c.write_all(b"a").is_err() {
            break started.elapsed();
        }
        match c.read(&mut [0u8; 1024]) {
            Ok(0) => break started.elapsed(),
            Ok(n) => panic!("unexpected response ({n} bytes) to an unfinished request"),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break started.elapsed(), // reset
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the trickling request is still open after 10 s");
    };
    assert!(closed < Duration::from_secs(6), "closed after {closed:?}");
}

#[test]
fn directory_redirects_use_the_normalised_path() {
    let f = Fixture::new();
    f.write("www/sp ace/index.html", b"space");
    f.write("www/q?dir/index.html", b"question mark");
    let s = Server::start(&f, false);
    let cases = [
        ("/pkg", "/pkg/"),
        ("//pkg", "/pkg/"),
        ("///pkg", "/pkg/"),
        ("/%2Fpkg", "/pkg/"),
        ("//sub?v=1&next=//evil.example", "/sub/?v=1&next=//evil.example"),
        ("/sub//..%2F..%2F", "-"), // refused, no redirect at all
        ("/img//", "-"),           // has its slash: no redirect (and no index.html: 404)
        ("/sp%20ace", "/sp%20ace/"),
        ("/q%3Fdir", "/q%3Fdir/"),
    ];
    for (path, want) in cases {
        let r = s.get(path);
        if want == "-" {
            assert_ne!(r.status, 301, "{path}");
            assert_eq!(r.header("location"), None, "{path}");
            continue;
        }
        assert_eq!(r.status, 301, "{path}: {}", r.text());
        let location = r.header("location").unwrap();
        assert_eq!(location, want, "{path}");
        assert!(!location.starts_with("//"), "{path} → {location}: a protocol-relative URL");
    }
    // And the redirects lead somewhere.
    assert_eq!(s.get("/sp%20ace/").text(), "space");
    assert_eq!(s.get("/q%3Fdir/").text(), "question mark");
}

/// Makes `rel` a file the server sees but cannot open: mode 000 (then the server answers 500),
/// or when permissions don't stop us (root), a link to a write-only sysfs attribute, which not
/// even root can open for reading, but which is outside the root (then the server refuses it
/// with 403 before opening it). The status to expect; None when neither works here.
fn unreadable_file(f: &Fixture, rel: &str) -> Option<u16> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let p = f.path(rel);
        f.write(rel, b"locked");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::File::open(&p).is_err() {
            return Some(500);
        }
        std::fs::remove_file(&p).unwrap();
        let target = ["/sys/bus/pci/rescan", "/sys/class/zram-control/hot_remove", "/sys/bus/usb/drivers_probe"]
            .into_iter()
            .find(|t| Path::new(t).is_file() && std::fs::File::open(t).is_err())?;
        std::os::unix::fs::symlink(target, &p).unwrap();
        Some(403)
    }
    #[cfg(not(unix))]
    {
        let _ = (f, rel);
        None
    }
}

#[test]
fn errors_do_not_reveal_server_side_paths() {
    let f = Fixture::new();
    let unreadable = unreadable_file(&f, "www/locked.bin");
    let s = Server::start(&f, true);
    // Every server-side path here is under the fixture folder, whose name is this.
    let folder = f.dir.file_name().unwrap().to_str().unwrap().to_string();
    let mut cases = vec![
        ("/no/such/file.js", 404),
        ("/hub/nobody/no-such-model/resolve/main/config.json", 404),
        ("/hub/no-such-model/resolve/main/config.json", 404),
        ("/hub/all-MiniLM-L6-v2/resolve/main/pytorch_model.bin", 404),
        ("/hub/all-MiniLM-L6-v2/resolve/v1.0/config.json", 404),
        ("/hub/all-MiniLM-L6-v2/config.json", 404),
        ("/faulty-hub/cut/nobody/resolve/main/config.json", 404),
        ("/../secret.txt", 400),
    ];
    if let Some(status) = unreadable {
        cases.push(("/locked.bin", status));
    } else {
        eprintln!("note: cannot make an unreadable file here; the 500 case is not checked");
    }
    for (path, status) in cases {
        let r = s.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(!r.text().contains(&folder), "{path}: the body reveals a server-side path: {}", r.text());
        for (name, value) in &r.headers {
            assert!(!value.contains(&folder), "{path}: header {name} reveals a server-side path: {value}");
        }
        assert!(!r.text().contains("os error"), "{path}: the body shows an io error: {}", r.text());
    }
    if let Some(status) = unreadable {
        assert!(s.get("/locked.bin").text().contains("/locked.bin"), "the {status} should name the URL");
        // The server-side details go to the log instead.
        s.wait_log(&[if status == 500 { "cannot read" } else { "refused" }, "locked.bin"]);
    }
}

#[test]
fn malformed_requests_are_refused() {
    let f = Fixture::new();
    let s = Server::start(&f, false);
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    assert_eq!(s.raw(huge.as_bytes()).status, 431);
    // A request target must be printable ASCII (it ends up in the log and in redirects).
    assert_eq!(s.raw(b"GET /sub\x01x HTTP/1.1\r\nHost: x\r\n\r\n").status, 400);
    assert_eq!(s.raw("GET /caf\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n".as_bytes()).status, 400);
    // A body is read only when its length is known and small.
    assert_eq!(s.raw(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x12\r\n\r\n").status, 400);
    assert_eq!(s.raw(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n").status, 413);
    let r = s.raw(b"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!((r.status, r.text().as_str()), (200, "export const x = 1;"));
}

#[test]
fn a_client_reading_slowly_but_steadily_is_closed_at_the_response_deadline() {
    let f = Fixture::new();
    // Far more than the client reads before the deadline (64 MiB at about 800 KB/s: 80 s).
    f.write("models/big/model.safetensors", &big_bytes(64 << 20));
    let s = Server::start_with(&f, &["--max-connections", "1", "--timeout", "2", "--response-timeout", "3"]);
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    write!(slow, "GET /hub/big/resolve/main/model.safetensors HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // Reads 16 KiB every 20 ms: every write of the server progresses well within --timeout.
    let reader = std::thread::spawn(move || {
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let started = Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = 0usize;
        while started.elapsed() < Duration::from_secs(30) {
            match slow.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        got
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.get("/index.html").status, 503, "the slow download should hold the only slot");
    // The response deadline frees the slot although the client never stopped reading.
    let started = Instant::now();
    while s.get("/index.html").status != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "a steadily reading client still holds its slot after 20 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let line = s.wait_log(&["GET /hub/big/resolve/main/model.safetensors 200", "timed out"]);
    assert!(!line.contains(&format!(" {} bytes", 64 << 20)), "{line}");
    let got = reader.join().unwrap();
    assert!(got > 0 && got < 64 << 20, "the slow client got {got} bytes");
}

#[cfg(unix)]
#[test]
fn symbolic_links_out_of_the_served_folders_are_refused() {
    use std::os::unix::fs::symlink;
    let f = Fixture::new();
    let secret = f.path("secret.txt");
    symlink(&secret, f.path("www/leak.txt")).unwrap();
    symlink(&f.dir, f.path("www/outside")).unwrap();
    symlink("../../secret.txt", f.path("models/all-MiniLM-L6-v2/tokenizer.json")).unwrap();
    symlink(&f.dir, f.path("models/escape")).unwrap();
    // Links that stay inside are fine: a file, a folder, and the served folders themselves.
    symlink("app.js", f.path("www/alias.js")).unwrap();
    symlink(f.path("www/pkg"), f.path("www/pkg-link")).unwrap();
    symlink("all-MiniLM-L6-v2", f.path("models/minilm-link")).unwrap();
    symlink(f.path("models"), f.path("models-link")).unwrap();
    symlink(f.path("www"), f.path("www-link")).unwrap();
    let s = Server::start(&f, false);
    for path in [
        "/leak.txt",
        "/outside/secret.txt",
        "/hub/all-MiniLM-L6-v2/resolve/main/tokenizer.json",
        "/hub/escape/resolve/main/secret.txt",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert!(!r.text().contains(SECRET), "{path} leaked the secret");
        assert!(r.text().contains("links to outside"), "{path}: {}", r.text());
        assert!(!r.text().contains(f.dir.to_str().unwrap()), "{path}: reveals a server-side path: {}", r.text());
    }
    s.wait_log(&["refused", "leak.txt", "symbolic link"]);
    assert_eq!(s.get("/alias.js").text(), "export const x = 1;");
    assert_eq!(s.get("/pkg-link/webtune_bg.wasm").body, b"\0asm\x01\0\0\0");
    assert_eq!(s.get("/hub/minilm-link/resolve/main/config.json").text(), "{\"hidden_size\": 384}");
    // Served folders given as links (a worktree's models/ often is one).
    let linked = Server::start_in(&f.path("www-link"), &f.path("models-link"), &[]);
    assert_eq!(linked.get("/app.js").text(), "export const x = 1;");
    assert_eq!(linked.get("/hub/all-MiniLM-L6-v2/resolve/main/config.json").text(), "{\"hidden_size\": 384}");
    assert_eq!(linked.get("/leak.txt").status, 403);
}

#[test]
fn methods_must_be_tokens_and_raw_bytes_are_not_echoed() {
    let f = Fixture::new();
    let s = Server::start(&f, false);
    for raw in [
        &b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GE(T) / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x1b[2J\x1b[31mGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G\xc3\xa9T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET\"<script> / HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let r = s.raw(raw);
        assert_eq!(r.status, 400, "{:?}: {}", String::from_utf8_lossy(raw), r.text());
        assert!(r.text().contains("token"), "{}", r.text());
        assert!(!r.body.iter().any(|&b| b == 0x1b || b == 0x01 || b >= 0x80 || b == b'<'), "raw bytes echoed: {:?}", r.text());
    }
    // Other malformed lines are echoed only escaped.
    for raw in [&b"GET / HTTP/1.1\r\nX-Bad\x1b[2J\r\n\r\n"[..], b"GET /\x1b[2J\r\n\r\n"] {
        let r = s.raw(raw);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(!r.body.contains(&0x1b), "raw bytes echoed: {:?}", r.text());
    }
    // A well-formed method other than GET or HEAD is still a 405 naming it.
    let r = s.request("BREW", "/", &[]);
    assert_eq!(r.status, 405);
    assert!(r.text().contains("BREW"), "{}", r.text());
    s.wait_log(&["BREW / 405"]);
    assert!(!s.log.lock().unwrap().iter().any(|l| l.contains('\x1b') || l.contains('\x01')), "raw bytes in the log");
}
