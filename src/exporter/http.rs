//! The exporter's HTTP/1.1 server, bounded in every way a scraper or a stranger could stretch it: at most
//! [`MAX_CONNECTIONS`] connections (further ones wait in the kernel's backlog), a request head of at most
//! [`MAX_HEAD_BYTES`] within [`HEAD_DEADLINE`], an answer written within [`WRITE_DEADLINE`], and a bounded
//! number of requests per connection. Every connection is a task on one current-thread tokio runtime, so a
//! client that pipelines requests and never reads its answers stalls only itself. Only GET and HEAD, without
//! a body, are understood; what a page says comes from the caller.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

/// Connections served at once; the next ones wait, unaccepted, until one ends. Prometheus keeps one per
/// scrape target, so a few are plenty.
pub const MAX_CONNECTIONS: usize = 64;
/// The largest request head (request line and headers) read; Prometheus sends about 300 bytes. A larger
/// one is answered 431 and the connection closed.
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a connection may take to send a whole request head, from its start or the previous answer.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// How long an answer may take to be written: a client that stops reading is hung up on.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Requests answered on one connection before it is closed.
const MAX_REQUESTS_PER_CONNECTION: usize = 1000;
/// After refusing a request, how long and how much of what the client still sends is read and dropped, so
/// that the refusal reaches it before the connection closes (closing with unread data sends a reset).
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);
const MAX_DRAIN_BYTES: usize = 1024 * 1024;
/// How long to wait before accepting again when accept fails for want of a resource (file descriptors).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// An answer: status, content type and body.
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// What a page is for a method and path.
pub(crate) type Pages = Arc<dyn Fn(&str, &str) -> Answer + Send + Sync>;

/// Serves `listener` until it fails for good; returns why. Accept failures that pass (out of file
/// descriptors, a connection aborted before it was accepted) pause and go on.
pub(crate) fn serve(listener: std::net::TcpListener, pages: Pages) -> String {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return format!("cannot start the metrics runtime: {e}"),
    };
    runtime.block_on(async move {
        if let Err(e) = listener.set_nonblocking(true) {
            return format!("cannot listen: {e}");
        }
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return format!("cannot listen: {e}"),
        };
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return "the connection slots closed".to_string();
            };
            match listener.accept().await {
                Ok((stream, _)) => {
                    let pages = Arc::clone(&pages);
                    tokio::spawn(async move {
                        connection(stream, &pages).await;
                        drop(slot);
                    });
                }
                Err(e) if listener_broken(&e) => return format!("the listener failed: {e}"),
                Err(_) => tokio::time::sleep(ACCEPT_PAUSE).await,
            }
        }
    })
}

/// An accept error that says the listening socket itself is gone (closed, shut down, not a socket), as
/// opposed to one connection or a passing shortage.
fn listener_broken(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP | libc::EFAULT)
    )
}

/// Why reading a request head stopped.
enum Head {
    /// A whole head of this many bytes is at the start of the buffer.
    Whole(usize),
    /// The client closed between requests.
    Closed,
    TooLarge,
    /// Closed mid-head, or a read failed.
    Broken,
}

/// Answers the requests of one connection, one at a time, until it closes, breaks or runs out of time.
async fn connection(stream: TcpStream, pages: &Pages) {
    let mut buffer = Vec::with_capacity(1024);
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let head = match timeout(HEAD_DEADLINE, read_head(&stream, &mut buffer)).await {
            Ok(Head::Whole(n)) => n,
            Ok(Head::TooLarge) => {
                let answer = refusal(431, "request header fields too large\n");
                let _ = timeout(WRITE_DEADLINE, write_all(&stream, &answer)).await;
                drain(&stream).await;
                return;
            }
            Ok(Head::Closed | Head::Broken) | Err(_) => return,
        };
        let (bytes, keep_open, refused) = match parse(&buffer[..head]) {
            Some(r) => {
                let answer = pages(r.method, r.path);
                let bytes = render(&answer, r.method == "HEAD", r.keep_open);
                (bytes, r.keep_open, false)
            }
            None => (refusal(400, "bad request: GET /metrics\n"), false, true),
        };
        buffer.drain(..head);
        match timeout(WRITE_DEADLINE, write_all(&stream, &bytes)).await {
            Ok(Ok(())) if keep_open => {}
            Ok(Ok(())) if refused => return drain(&stream).await,
            _ => return,
        }
    }
}

/// Reads until `buffer` starts with a whole request head (ending in an empty line), never holding more
/// than [`MAX_HEAD_BYTES`]; bytes after the head (a pipelined request) stay in the buffer.
async fn read_head(stream: &TcpStream, buffer: &mut Vec<u8>) -> Head {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head_end(buffer) {
            return Head::Whole(end);
        }
        let room = MAX_HEAD_BYTES.saturating_sub(buffer.len());
        if room == 0 {
            return Head::TooLarge;
        }
        if stream.readable().await.is_err() {
            return Head::Broken;
        }
        let want = room.min(chunk.len());
        match stream.try_read(&mut chunk[..want]) {
            Ok(0) if buffer.is_empty() => return Head::Closed,
            Ok(0) => return Head::Broken,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Head::Broken,
        }
    }
}

/// Where the head ends: after the first empty line (CRLF CRLF, or bare LFs as lenient servers accept).
fn head_end(buffer: &[u8]) -> Option<usize> {
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A request as far as the exporter cares.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    keep_open: bool,
}

/// The request line and the headers that decide framing; `None` for what this server does not speak (not
/// HTTP/1.x, or a request with a body, which it would otherwise read as the next request).
fn parse(head: &[u8]) -> Option<Request<'_>> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.lines();
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut keep_open = version == "HTTP/1.1";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("connection") {
            keep_open = if value.eq_ignore_ascii_case("close") {
                false
            } else {
                keep_open || value.eq_ignore_ascii_case("keep-alive")
            };
        }
        let body = (name.eq_ignore_ascii_case("content-length") && value != "0")
            || name.eq_ignore_ascii_case("transfer-encoding");
        if body {
            return None;
        }
    }
    let path = target.split('?').next().unwrap_or("");
    Some(Request {
        method,
        path,
        keep_open,
    })
}

/// The bytes of an answer; a HEAD gets the headers alone.
fn render(answer: &Answer, head_only: bool, keep_open: bool) -> Vec<u8> {
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let connection = if keep_open { "keep-alive" } else { "close" };
    let mut bytes = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    if !head_only {
        bytes.extend_from_slice(answer.body.as_bytes());
    }
    bytes
}

/// A refusal that closes the connection.
fn refusal(status: u16, why: &str) -> Vec<u8> {
    let answer = Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: why.to_string(),
    };
    render(&answer, false, false)
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads and drops what the client still sends, bounded in time and bytes, so a refusal is read before the
/// connection closes.
async fn drain(stream: &TcpStream) {
    let mut chunk = [0u8; 4096];
    let mut left = MAX_DRAIN_BYTES;
    let _ = timeout(DRAIN_DEADLINE, async {
        while left > 0 {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_parse_and_frame() {
        let r = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!((r.method, r.path, r.keep_open), ("GET", "/metrics", true));
        let r = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!r.keep_open);
        let r = parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!r.keep_open);
        assert!(parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").is_none());
        assert!(parse(b"GET / HTTP/2\r\n\r\n").is_none());
        assert!(parse(b"\xff\xfe\r\n\r\n").is_none());
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nGET"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
    }

    #[test]
    fn a_listener_that_fails_for_good_ends_serving_with_the_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let pages: Pages = Arc::new(|_, _| Answer {
            status: 200,
            content_type: "text/plain",
            body: String::new(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(serve(listener, pages));
        });
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: shutdown on a descriptor the serving thread owns and still holds open; on Linux it wakes
        // accept with EINVAL, as a listener that died would.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        let why = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("serving went on after its listener died");
        assert!(why.contains("the listener failed"), "{why}");
    }
}
