//! Small servers for the CLI, the demo and the tests: echo (RFC 862), discard (RFC 863)
//! and a static-file HTTP/1.1 server (GET and HEAD only). Generic over any stream, so the
//! same code runs on a utcp [`TcpStream`](utcp::TcpStream) or a kernel socket.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

const CHUNK: usize = 64 * 1024;

/// Echo everything until the peer half-closes; then return the byte count (the caller
/// drops the stream, which closes our side).
pub fn echo<S: Read + Write>(mut s: S) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        s.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Read and throw away everything until EOF; return the byte count.
pub fn discard<S: Read>(mut s: S) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Largest request head we accept (request line + headers).
const MAX_HEAD: usize = 16 * 1024;

/// Serve one HTTP/1.1 request from files under `root`, then close (`Connection: close`).
/// Returns the status code sent and the body bytes written.
pub fn http<S: Read + Write>(mut s: S, root: &Path) -> io::Result<(u16, u64)> {
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 1024];
    // Read until the blank line that ends the head (RFC 9112 §2.1).
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return respond(&mut s, 431, "Request Header Fields Too Large", None, false);
        }
        let n = s.read(&mut byte)?;
        if n == 0 {
            return Ok((0, 0));
        }
        head.extend_from_slice(&byte[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = match (words.next(), words.next(), words.next()) {
        (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => (m, t),
        _ => return respond(&mut s, 400, "Bad Request", None, false),
    };
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return respond(&mut s, 405, "Method Not Allowed", None, false),
    };
    let Some(path) = resolve_path(root, target) else {
        return respond(&mut s, 404, "Not Found", None, head_only);
    };
    match std::fs::File::open(&path) {
        Ok(f) if f.metadata().map(|m| m.is_file()).unwrap_or(false) => {
            respond(&mut s, 200, "OK", Some(f), head_only)
        }
        _ => respond(&mut s, 404, "Not Found", None, head_only),
    }
}

/// Map a request target to a file under `root`, refusing anything that could leave it:
/// `..` components, NUL bytes, and symlinks pointing outside (checked after canonicalizing).
pub fn resolve_path(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    if !decoded.starts_with('/') || decoded.contains('\0') {
        return None;
    }
    let rel = Path::new(decoded.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return None;
    }
    let mut full = root.join(rel);
    if full.is_dir() {
        full.push("index.html");
    }
    let canon_root = root.canonicalize().ok()?;
    let canon = full.canonicalize().ok()?;
    canon.starts_with(&canon_root).then_some(canon)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn respond<S: Write>(
    s: &mut S,
    code: u16,
    reason: &str,
    file: Option<std::fs::File>,
    head_only: bool,
) -> io::Result<(u16, u64)> {
    let body_404 = format!("{code} {reason}\n");
    let len = match &file {
        Some(f) => f.metadata()?.len(),
        None => body_404.len() as u64,
    };
    let ctype = if file.is_some() { "application/octet-stream" } else { "text/plain" };
    let hdr = format!(
        "HTTP/1.1 {code} {reason}\r\nServer: utcp\r\nContent-Type: {ctype}\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(hdr.as_bytes())?;
    if head_only {
        return Ok((code, 0));
    }
    let mut sent = 0u64;
    match file {
        None => {
            s.write_all(body_404.as_bytes())?;
            sent = body_404.len() as u64;
        }
        Some(mut f) => {
            let mut buf = vec![0u8; CHUNK];
            // Send exactly the advertised Content-Length even if the file grows meanwhile.
            while sent < len {
                let want = ((len - sent) as usize).min(buf.len());
                let n = f.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being served",
                    ));
                }
                s.write_all(&buf[..n])?;
                sent += n as u64;
            }
        }
    }
    Ok((code, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory duplex stream: reads from `input`, writes into `output`.
    struct Duplex {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }
    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.input.read(b)
        }
    }
    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn duplex(req: &[u8]) -> Duplex {
        Duplex { input: io::Cursor::new(req.to_vec()), output: Vec::new() }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("utcp-apps-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("hello.txt"), b"hello world\n").unwrap();
        std::fs::write(d.join("sub/index.html"), b"<p>hi</p>").unwrap();
        d
    }

    #[test]
    fn echo_and_discard_count_bytes() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let mut d = duplex(&data);
        assert_eq!(echo(&mut d).unwrap(), data.len() as u64);
        assert_eq!(d.output, data);
        assert_eq!(discard(io::Cursor::new(data.clone())).unwrap(), data.len() as u64);
    }

    #[test]
    fn http_get_head_404_and_traversal() {
        let root = tmpdir("http");
        let mut d = duplex(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(http(&mut d, &root).unwrap(), (200, 12));
        let out = String::from_utf8(d.output).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Length: 12\r\n"));
        assert!(out.ends_with("\r\n\r\nhello world\n"));

        let mut d = duplex(b"HEAD /hello.txt HTTP/1.1\r\n\r\n");
        assert_eq!(http(&mut d, &root).unwrap(), (200, 0));
        let out = String::from_utf8(d.output).unwrap();
        assert!(out.contains("Content-Length: 12\r\n") && out.ends_with("\r\n\r\n"));

        let mut d = duplex(b"GET /sub/ HTTP/1.0\r\n\r\n");
        assert_eq!(http(&mut d, &root).unwrap(), (200, 9));

        for bad in [
            "/missing",
            "/../etc/passwd",
            "/sub/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2e%2e%2fetc%2fpasswd",
            "//etc/passwd",
        ] {
            let mut d = duplex(format!("GET {bad} HTTP/1.1\r\n\r\n").as_bytes());
            assert_eq!(http(&mut d, &root).unwrap().0, 404, "{bad}");
        }
        let mut d = duplex(b"POST / HTTP/1.1\r\n\r\n");
        assert_eq!(http(&mut d, &root).unwrap().0, 405);
        let mut d = duplex(b"garbage\r\n\r\n");
        assert_eq!(http(&mut d, &root).unwrap().0, 400);
        let _ = std::fs::remove_dir_all(&root);
    }
}
