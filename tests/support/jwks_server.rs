//! A loopback HTTP server standing in for an identity provider's JWKS
//! endpoint (`/.well-known/jwks.json`): the test decides what it publishes
//! and when it rotates. Plain threads, so both the CLI tests (which run
//! `jwtkit` as a process) and async tests (the library verifier, PyJWT's
//! `PyJWKClient`) can use it. Stopped on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running JWKS server on 127.0.0.1.
pub struct JwksServer {
    /// `http://127.0.0.1:PORT/.well-known/jwks.json`
    pub url: String,
    addr: SocketAddr,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JwksServer {
    /// Starts serving `jwks` (a JWK Set document) on a free loopback port.
    pub fn start(jwks: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let body = Arc::new(Mutex::new(jwks));
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (body, hits, stop) = (body.clone(), hits.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        answer(conn, &body, &hits);
                    }
                }
            })
        };
        JwksServer {
            url: format!("http://{addr}/.well-known/jwks.json"),
            addr,
            body,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    /// From now on, publishes `jwks` (the provider rotated).
    pub fn publish(&self, jwks: String) {
        *self.body.lock().expect("JWKS lock") = jwks;
    }

    /// How many requests were answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request's head and answers with the current JWKS. One request
/// per connection (`Connection: close`), bounded by timeouts so a stuck
/// client cannot stall the server.
fn answer(mut conn: TcpStream, body: &Mutex<String>, hits: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let request_line = String::from_utf8_lossy(&head);
    let path_ok = request_line.starts_with("GET /.well-known/jwks.json ");
    let (status, body) = if path_ok {
        ("200 OK", body.lock().expect("JWKS lock").clone())
    } else {
        ("404 Not Found", String::from("{\"error\":\"not found\"}"))
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
    let _ = conn.flush();
}

/// A JWK Set of the given JWKs (each a JSON object).
pub fn jwks_of(keys: &[&serde_json::Value]) -> String {
    serde_json::json!({ "keys": keys }).to_string()
}
