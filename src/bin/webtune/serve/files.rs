//! The files `webtune serve` hands out: request paths to plain file names, MIME types, byte
//! ranges, and the check that a file's real path stays inside the folder it is served from.
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use super::http::{Body, Response};

/// MIME type by file extension.
pub(super) fn mime_type(path: &Path) -> &'static str {
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
pub(super) fn path_segments(path: &str) -> Result<Vec<String>, &'static str> {
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
pub(super) fn encode_segment(segment: &str) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
    segment.bytes().map(|b| if keep(b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A single `Range: bytes=…` → `Some(Ok((start, len)))`; `Some(Err(()))` when unsatisfiable;
/// `None` to ignore it (absent, malformed or multi-range: the whole file is sent).
pub(super) fn parse_range(header: Option<&str>, size: u64) -> Option<Result<(u64, u64), ()>> {
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
pub(super) fn serve_file(base: &Path, path: &Path, url: &str, range: Option<&str>) -> Response {
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
pub(super) fn inside(base: &Path, path: &Path) -> io::Result<Option<PathBuf>> {
    let (base, real) = (std::fs::canonicalize(base)?, std::fs::canonicalize(path)?);
    Ok(real.starts_with(&base).then_some(real))
}
