//! Just enough HTTP/1.x for a status page: parsing a request head, writing a response.
//!
//! The server answers one request per connection and closes it (`Connection: close`),
//! which HTTP/1.0 and HTTP/1.1 clients both accept. Only the request line matters;
//! header fields are skipped (but count against the size limit).

use core::fmt::{self, Write};

/// Request methods the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`: head and body.
    Get,
    /// `HEAD`: the head only.
    Head,
}

/// A parsed request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The path, without a query string.
    pub path: &'a str,
}

/// Why a request is answered with an error status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The request line is malformed (400).
    BadRequest,
    /// A method other than `GET` and `HEAD` (405).
    MethodNotAllowed,
    /// A protocol other than `HTTP/1.0` and `HTTP/1.1` (505).
    VersionNotSupported,
    /// The head does not fit the receive buffer (431).
    HeadTooLarge,
}

impl RequestError {
    /// The status this error is answered with.
    pub const fn status(self) -> Status {
        match self {
            RequestError::BadRequest => Status::BadRequest,
            RequestError::MethodNotAllowed => Status::MethodNotAllowed,
            RequestError::VersionNotSupported => Status::VersionNotSupported,
            RequestError::HeadTooLarge => Status::HeadTooLarge,
        }
    }
}

/// Parses the request head at the start of `data`: `Ok(None)` while the empty line
/// that ends it has not arrived yet. Never panics, whatever `data` holds.
pub fn parse(data: &[u8]) -> Result<Option<Request<'_>>, RequestError> {
    // The head ends with an empty line; bare LF line ends are tolerated (RFC 9112 2.2).
    let Some(head_end) = find(data, b"\n\r\n").or_else(|| find(data, b"\n\n")) else {
        return Ok(None);
    };
    let head = &data[..head_end];
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let line = core::str::from_utf8(line).map_err(|_| RequestError::BadRequest)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::BadRequest);
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(match version.strip_prefix("HTTP/") {
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                RequestError::VersionNotSupported
            }
            _ => RequestError::BadRequest,
        });
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(RequestError::BadRequest);
    }
    if !target.starts_with('/') {
        return Err(RequestError::BadRequest);
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => return Err(RequestError::MethodNotAllowed),
    };
    let path = target.split('?').next().unwrap_or(target);
    Ok(Some(Request { method, path }))
}

/// Where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Response statuses the server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 400.
    BadRequest,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 431.
    HeadTooLarge,
    /// 505.
    VersionNotSupported,
}

impl Status {
    /// The status code.
    pub const fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::HeadTooLarge => 431,
            Status::VersionNotSupported => 505,
        }
    }

    /// The reason phrase.
    pub const fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::HeadTooLarge => "Request Header Fields Too Large",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// A `fmt::Write` into a byte slice that fails (instead of truncating silently) when
/// the slice is full.
pub struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Cursor<'a> {
    /// An empty cursor over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Cursor { buf, len: 0 }
    }

    /// The bytes written.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// How many bytes were written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> fmt::Result {
        let end = self.len.checked_add(bytes.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes())
    }
}

/// Writes a whole response into `out`: status line, `Content-Type`, `Content-Length`,
/// `Connection: close`, then `body` unless `head_only`. Fails if `out` is too small.
pub fn write_response(
    out: &mut Cursor<'_>,
    status: Status,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> fmt::Result {
    write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: muen-echo\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        status.code(),
        status.reason(),
        content_type,
        body.len()
    )?;
    if status == Status::MethodNotAllowed {
        out.write_str("Allow: GET, HEAD\r\n")?;
    }
    out.write_str("Connection: close\r\n\r\n")?;
    if !head_only {
        out.write_bytes(body)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_once_the_head_is_complete() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"GET / HTTP/1.0\r\n"), Ok(None));
        assert_eq!(parse(b"GET / HTTP/1.0\r\nHost: x\r\n"), Ok(None));
        let r = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(
            r,
            Request {
                method: Method::Get,
                path: "/"
            }
        );
        let r = parse(b"HEAD /x?y=1 HTTP/1.1\r\nHost: 10.0.0.2\r\nAccept: */*\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.method, Method::Head);
        assert_eq!(r.path, "/x");
        // Bare LF, as some hand-typed clients send.
        assert_eq!(parse(b"GET / HTTP/1.1\n\n").unwrap().unwrap().path, "/");
    }

    #[test]
    fn bad_requests_get_the_right_error() {
        use RequestError::*;
        assert_eq!(parse(b"GET /\r\n\r\n"), Err(BadRequest));
        assert_eq!(parse(b"GET  / HTTP/1.1\r\n\r\n"), Err(BadRequest));
        assert_eq!(parse(b"GET / HTTP/1.1 x\r\n\r\n"), Err(BadRequest));
        assert_eq!(parse(b"GET x HTTP/1.1\r\n\r\n"), Err(BadRequest));
        assert_eq!(parse(b"get / HTTP/1.1\r\n\r\n"), Err(BadRequest));
        assert_eq!(parse(b"GET / FTP/1.1\r\n\r\n"), Err(BadRequest));
        assert_eq!(parse(b"\xff / HTTP/1.1\r\n\r\n"), Err(BadRequest));
        assert_eq!(parse(b"POST / HTTP/1.1\r\n\r\n"), Err(MethodNotAllowed));
        assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n"), Err(VersionNotSupported));
        assert_eq!(parse(b"GET / HTTP/\r\n\r\n"), Err(BadRequest));
        assert_eq!(HeadTooLarge.status().code(), 431);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics() {
        let mut x: u32 = 1;
        let mut buf = [0u8; 64];
        for _ in 0..20_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Mostly the characters a request is made of.
                let alphabet = b"GET /HTP1.0\r\n \xff";
                *b = alphabet[x as usize % alphabet.len()];
            }
            let _ = parse(&buf[..(x % 65) as usize]);
        }
    }

    #[test]
    fn responses_carry_length_and_close() {
        let mut buf = [0u8; 256];
        let mut c = Cursor::new(&mut buf);
        write_response(&mut c, Status::Ok, "text/plain", b"hi\n", false).unwrap();
        assert_eq!(
            core::str::from_utf8(c.written()).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: muen-echo\r\nContent-Type: text/plain\r\n\
             Content-Length: 3\r\nConnection: close\r\n\r\nhi\n"
        );
        let mut c = Cursor::new(&mut buf);
        write_response(
            &mut c,
            Status::MethodNotAllowed,
            "text/plain",
            b"no\n",
            true,
        )
        .unwrap();
        let text = core::str::from_utf8(c.written()).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("Allow: GET, HEAD\r\n"));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.ends_with("\r\n\r\n"), "HEAD: no body");
    }

    #[test]
    fn a_full_cursor_fails_instead_of_truncating() {
        let mut buf = [0u8; 40];
        let mut c = Cursor::new(&mut buf);
        assert!(write_response(&mut c, Status::Ok, "text/plain", b"x", false).is_err());
        let mut c = Cursor::new(&mut buf[..3]);
        assert!(c.write_str("abcd").is_err());
        assert_eq!(c.len(), 0);
        c.write_str("abc").unwrap();
        assert_eq!(c.written(), b"abc");
    }
}
