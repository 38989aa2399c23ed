//! Just enough HTTP/1.x for small services: parsing a request head, writing a
//! response.
//!
//! The server answers one request per connection and closes it (`Connection: close`),
//! which HTTP/1.0 and HTTP/1.1 clients both accept. The request line matters, and of
//! the header fields `Content-Length` (the length of a body that follows the head) and
//! `Transfer-Encoding` (refused: bodies come with a length); the others are skipped
//! (but count against the size limit). Used by `echo`'s status page and by
//! `examples/web`.

use core::fmt::{self, Write};

/// Request methods the parser knows; a service answers those it serves and 405 the
/// others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`: head and body.
    Get,
    /// `HEAD`: the head only.
    Head,
    /// `POST`: a body for the resource.
    Post,
}

/// A parsed request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The path, without a query string.
    pub path: &'a str,
    /// The length of the head in bytes, its closing empty line included: the body
    /// starts here.
    pub head_len: usize,
    /// The length of the body (`Content-Length`; 0 without one).
    pub body_len: usize,
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
    /// The head and the body do not fit the receive buffer (413).
    BodyTooLarge,
    /// A body without a `Content-Length` (`Transfer-Encoding`, 411).
    LengthRequired,
}

impl RequestError {
    /// The status this error is answered with.
    pub const fn status(self) -> Status {
        match self {
            RequestError::BadRequest => Status::BadRequest,
            RequestError::MethodNotAllowed => Status::MethodNotAllowed,
            RequestError::VersionNotSupported => Status::VersionNotSupported,
            RequestError::HeadTooLarge => Status::HeadTooLarge,
            RequestError::BodyTooLarge => Status::PayloadTooLarge,
            RequestError::LengthRequired => Status::LengthRequired,
        }
    }
}

/// Parses the request head at the start of `data`: `Ok(None)` while the empty line
/// that ends it has not arrived yet. Never panics, whatever `data` holds.
pub fn parse(data: &[u8]) -> Result<Option<Request<'_>>, RequestError> {
    // The head ends with an empty line; bare LF line ends are tolerated (RFC 9112 2.2).
    // The first empty line, whichever its line end (a body may hold the other kind).
    let crlf = find(data, b"\n\r\n").map(|i| (i, 3));
    let lf = find(data, b"\n\n").map(|i| (i, 2));
    let Some((head_end, terminator)) = [crlf, lf].into_iter().flatten().min() else {
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
        "POST" => Method::Post,
        _ => return Err(RequestError::MethodNotAllowed),
    };
    let mut body_len = None;
    for field in head[line_end..].split(|&b| b == b'\n').skip(1) {
        let field = field.strip_suffix(b"\r").unwrap_or(field);
        let Some(colon) = field.iter().position(|&b| b == b':') else {
            return Err(RequestError::BadRequest);
        };
        let (name, value) = (&field[..colon], field[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = core::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or(RequestError::BadRequest)?;
            // Two different lengths make the body's end ambiguous (RFC 9112 6.3).
            if body_len.is_some_and(|l| l != length) {
                return Err(RequestError::BadRequest);
            }
            body_len = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(RequestError::LengthRequired);
        }
    }
    let path = target.split('?').next().unwrap_or(target);
    Ok(Some(Request {
        method,
        path,
        head_len: head_end + terminator,
        body_len: body_len.unwrap_or(0),
    }))
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
    /// 201.
    Created,
    /// 400.
    BadRequest,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 411.
    LengthRequired,
    /// 413.
    PayloadTooLarge,
    /// 431.
    HeadTooLarge,
    /// 500.
    InternalError,
    /// 502.
    BadGateway,
    /// 503.
    Unavailable,
    /// 504.
    GatewayTimeout,
    /// 505.
    VersionNotSupported,
    /// 507.
    InsufficientStorage,
}

impl Status {
    /// The status code.
    pub const fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Created => 201,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::LengthRequired => 411,
            Status::PayloadTooLarge => 413,
            Status::HeadTooLarge => 431,
            Status::InternalError => 500,
            Status::BadGateway => 502,
            Status::Unavailable => 503,
            Status::GatewayTimeout => 504,
            Status::VersionNotSupported => 505,
            Status::InsufficientStorage => 507,
        }
    }

    /// The reason phrase.
    pub const fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Created => "Created",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::LengthRequired => "Length Required",
            Status::PayloadTooLarge => "Content Too Large",
            Status::HeadTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
            Status::BadGateway => "Bad Gateway",
            Status::Unavailable => "Service Unavailable",
            Status::GatewayTimeout => "Gateway Timeout",
            Status::VersionNotSupported => "HTTP Version Not Supported",
            Status::InsufficientStorage => "Insufficient Storage",
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

/// The head of a response: its status and the header fields a service sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    /// The status.
    pub status: Status,
    /// `Server`: the service's name.
    pub server: &'a str,
    /// `Content-Type` of the body.
    pub content_type: &'a str,
    /// `Allow`: the methods the resource answers (sent with 405 only).
    pub allow: &'a str,
    /// `Location`, if any (e.g. of what a 201 created).
    pub location: Option<&'a str>,
}

/// Writes a whole response into `out`: status line, `Server`, `Content-Type`,
/// `Content-Length`, `Allow` (405) and `Location` if given, `Connection: close`, then
/// `body` unless `head_only`. Fails if `out` is too small.
pub fn write(out: &mut Cursor<'_>, head: &Head<'_>, body: &[u8], head_only: bool) -> fmt::Result {
    write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        head.status.code(),
        head.status.reason(),
        head.server,
        head.content_type,
        body.len()
    )?;
    if head.status == Status::MethodNotAllowed {
        write!(out, "Allow: {}\r\n", head.allow)?;
    }
    if let Some(location) = head.location {
        write!(out, "Location: {location}\r\n")?;
    }
    out.write_str("Connection: close\r\n\r\n")?;
    if !head_only {
        out.write_bytes(body)?;
    }
    Ok(())
}

/// [`write()`] with `echo`'s head: `Server: muen-echo`, `Allow: GET, HEAD`.
pub fn write_response(
    out: &mut Cursor<'_>,
    status: Status,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> fmt::Result {
    let head = Head {
        status,
        server: "muen-echo",
        content_type,
        allow: "GET, HEAD",
        location: None,
    };
    write(out, &head, body, head_only)
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
                path: "/",
                head_len: 18,
                body_len: 0,
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
        assert_eq!(parse(b"PUT / HTTP/1.1\r\n\r\n"), Err(MethodNotAllowed));
        assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n"), Err(VersionNotSupported));
        assert_eq!(parse(b"GET / HTTP/\r\n\r\n"), Err(BadRequest));
        assert_eq!(HeadTooLarge.status().code(), 431);
        assert_eq!(BodyTooLarge.status().code(), 413);
        // Header fields: a line without a colon, a length that is not a number, two
        // lengths that disagree, chunked bodies.
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost\r\n\r\n"), Err(BadRequest));
        for length in ["", "-1", "1e3", "0x10", "99999999999999999999999"] {
            let head = format!("POST / HTTP/1.1\r\nContent-Length: {length}\r\n\r\n");
            assert_eq!(parse(head.as_bytes()), Err(BadRequest), "{length:?}");
        }
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\n"),
            Err(BadRequest)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(LengthRequired)
        );
    }

    #[test]
    fn posts_give_the_length_of_their_body() {
        let data = b"POST /entries?x HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH:  11 \r\n\r\nname=a&te";
        let r = parse(data).unwrap().unwrap();
        assert_eq!(
            (r.method, r.path, r.body_len),
            (Method::Post, "/entries", 11)
        );
        assert_eq!(&data[r.head_len..], b"name=a&te");
        let data = b"POST / HTTP/1.0\nContent-Length: 2\ncontent-length: 2\n\na\n\r\n";
        let same = parse(data).unwrap().unwrap();
        assert_eq!(same.body_len, 2);
        assert_eq!(
            &data[same.head_len..],
            b"a\n\r\n",
            "the first empty line ends the head"
        );
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
    fn a_head_can_name_its_service_and_what_it_created() {
        let mut buf = [0u8; 256];
        let mut c = Cursor::new(&mut buf);
        let head = Head {
            status: Status::Created,
            server: "muen-web",
            content_type: "text/plain",
            allow: "GET, POST",
            location: Some("/entries/3"),
        };
        write(&mut c, &head, b"entry 3\n", false).unwrap();
        assert_eq!(
            core::str::from_utf8(c.written()).unwrap(),
            "HTTP/1.1 201 Created\r\nServer: muen-web\r\nContent-Type: text/plain\r\n\
             Content-Length: 8\r\nLocation: /entries/3\r\nConnection: close\r\n\r\nentry 3\n"
        );
        let mut c = Cursor::new(&mut buf);
        let head = Head {
            status: Status::MethodNotAllowed,
            ..head
        };
        write(&mut c, &head, b"", false).unwrap();
        assert!(core::str::from_utf8(c.written())
            .unwrap()
            .contains("Allow: GET, POST\r\n"));
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
