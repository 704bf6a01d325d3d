//! A real HTTP/1.1 server on 127.0.0.1 serving a JWKS, which tests can make
//! rotate, fail, hang, return garbage or drop connections, and which counts
//! its hits.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// 200 with this JWKS and optional `Cache-Control`.
    Serve {
        body: String,
        cache_control: Option<String>,
    },
    /// This status, empty body.
    Status(u16),
    /// 200, `application/json`, but not JSON.
    Garbage,
    /// 200 with `text/html`.
    Html,
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// Accept, read the request, then say nothing for this long.
    Hang(Duration),
    /// Close the connection without answering.
    Close,
    /// Like `Serve`, after a delay.
    Slow { body: String, delay: Duration },
}

pub struct JwksServer {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    pub async fn start(mode: Mode) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mode = Arc::new(Mutex::new(mode));
        let hits = Arc::new(AtomicUsize::new(0));
        let (m, h) = (mode.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let (m, h) = (m.clone(), h.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let mode = m.lock().unwrap().clone();
                    let response = match mode {
                        Mode::Serve {
                            body,
                            cache_control,
                        } => response(
                            "200 OK",
                            "application/json",
                            cache_control.as_deref(),
                            body.as_bytes(),
                        ),
                        Mode::Status(code) => {
                            response(&format!("{code} Oops"), "text/plain", None, b"")
                        }
                        Mode::Garbage => {
                            response("200 OK", "application/json", None, b"<html>oops</html>")
                        }
                        Mode::Html => response("200 OK", "text/html", None, b"<html></html>"),
                        Mode::Huge(n) => {
                            let body = format!("{{\"keys\":[],\"pad\":\"{}\"}}", "a".repeat(n));
                            response("200 OK", "application/json", None, body.as_bytes())
                        }
                        Mode::Hang(d) => {
                            tokio::time::sleep(d).await;
                            return;
                        }
                        Mode::Close => return,
                        Mode::Slow { body, delay } => {
                            tokio::time::sleep(delay).await;
                            response("200 OK", "application/json", None, body.as_bytes())
                        }
                    };
                    let _ = sock.write_all(&response).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        JwksServer {
            url: format!("http://{addr}/.well-known/jwks.json"),
            mode,
            hits,
            task,
        }
    }

    pub async fn serving(jwks_json: String) -> JwksServer {
        JwksServer::start(Mode::Serve {
            body: jwks_json,
            cache_control: None,
        })
        .await
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn serve(&self, jwks_json: String) {
        self.set(Mode::Serve {
            body: jwks_json,
            cache_control: None,
        });
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn response(status: &str, content_type: &str, cache_control: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(cc) = cache_control {
        out.push_str(&format!("Cache-Control: {cc}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}
