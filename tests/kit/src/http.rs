//! A minimal HTTP/1.1 client for WHEP and the API: one request per connection.

use anyhow::{bail, Context};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced), and as it came.
    pub body: String,
    pub body_bytes: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub async fn request(server: SocketAddr, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> anyhow::Result<Response> {
    request_with(server, method, path, &[], content_type, body).await
}

/// A request with more headers (`Authorization`, `Origin`).
pub async fn request_with(server: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], content_type: Option<&str>, body: &[u8]) -> anyhow::Result<Response> {
    let mut stream = TcpStream::connect(server).await.with_context(|| format!("connecting to {server}"))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let Some(head_end) = raw.windows(4).position(|window| window == b"\r\n\r\n") else { bail!("no end of headers in {:?}", String::from_utf8_lossy(&raw)) };
    let body_bytes = raw[head_end + 4..].to_vec();
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let body = String::from_utf8_lossy(&body_bytes).into_owned();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).with_context(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect();
    Ok(Response { status, headers, body, body_bytes })
}

/// The session id in a WHEP resource URL, `/whep-sessions/ID.SECRET`.
pub fn whep_session_id(location: &str) -> String {
    let resource = location.rsplit('/').next().unwrap_or_default();
    resource.split('.').next().unwrap_or_default().to_owned()
}
