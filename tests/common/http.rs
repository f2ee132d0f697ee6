//! Plain HTTP/1.1 over loopback for tests and benchmarks (no client library:
//! what goes over the wire is what the test writes), and the HMAC-SHA256
//! signature webhooks carry.

/// `GET path` on 127.0.0.1:port: (status code, body), or None while nothing listens.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_with(port, path, "")
}

/// `GET path` with extra header lines.
pub fn http_get_with(port: u16, path: &str, headers: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    // A server that stops answering fails the test instead of blocking it.
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20))).ok()?;
    write!(conn, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `POST path` on 127.0.0.1:port with header lines and a body: (status code,
/// body). The body is written from a thread of its own, so a server that
/// answers before reading it all (413) is heard.
pub fn http_post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    conn.write_all(head.as_bytes()).unwrap();
    let mut writer = conn.try_clone().unwrap();
    let body = body.to_vec();
    let sent = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut bytes = Vec::new();
    let _ = conn.read_to_end(&mut bytes);
    sent.join().unwrap();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`, as the hosts sign.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// An HTTP receiver on 127.0.0.1: records every request (path, body) and
/// answers each with the status `answer(path, n)` gives (n: the requests to
/// that path so far, from 0).
pub struct Sink {
    pub port: u16,
    /// (path, header lines lowercased up to the first colon, body).
    pub received: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
}

impl Sink {
    pub fn start(answer: fn(&str, usize) -> u16) -> Sink {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>> = Default::default();
        let log = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
                let mut length = 0;
                let mut headers = String::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        headers.push_str(&format!("{}:{value}", name.to_ascii_lowercase()));
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let n = {
                    let mut log = log.lock().unwrap();
                    let n = log.iter().filter(|(p, _, _)| *p == path).count();
                    log.push((path.clone(), headers, String::from_utf8_lossy(&body).to_string()));
                    n
                };
                let code = answer(&path, n);
                let _ = write!(conn, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Sink { port, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The bodies received on `path`, parsed as JSON.
    pub fn bodies(&self, path: &str) -> Vec<serde_json::Value> {
        let log = self.received.lock().unwrap();
        log.iter().filter(|(p, _, _)| p == path).map(|(_, _, b)| serde_json::from_str(b).unwrap()).collect()
    }

    /// The header lines of each request received on `path`.
    pub fn headers(&self, path: &str) -> Vec<String> {
        let log = self.received.lock().unwrap();
        log.iter().filter(|(p, _, _)| p == path).map(|(_, h, _)| h.clone()).collect()
    }
}
