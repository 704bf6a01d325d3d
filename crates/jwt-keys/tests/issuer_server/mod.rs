//! A real HTTP/1.1 server on 127.0.0.1 that plays one or more identity
//! providers: each path (a metadata document, a JWKS) answers as the test
//! sets it — a document with a `Cache-Control`, a status, garbage, a
//! redirect, a slow or hanging answer — and counts its hits.
#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwt_core::{Algorithm, Jwks, Signer, SigningKey};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What one path answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 `application/json` with this body and optional `Cache-Control`.
    Json {
        body: String,
        cache_control: Option<String>,
    },
    /// This status, empty body.
    Status(u16),
    /// 200 `application/json` whose body is not JSON.
    Garbage,
    /// 200 `text/html`.
    Html,
    /// A redirect to this location.
    Redirect(u16, String),
    /// Read the request, then say nothing for this long.
    Hang(Duration),
    /// Like `Json` (no `Cache-Control`), after a delay.
    Slow { body: String, delay: Duration },
    /// Close the connection without answering.
    Close,
}

impl Answer {
    pub fn json(body: impl Into<String>) -> Answer {
        Answer::Json {
            body: body.into(),
            cache_control: None,
        }
    }

    pub fn json_max_age(body: impl Into<String>, max_age: u64) -> Answer {
        Answer::Json {
            body: body.into(),
            cache_control: Some(format!("max-age={max_age}")),
        }
    }
}

#[derive(Default)]
struct Routes {
    answers: HashMap<String, Answer>,
    hits: HashMap<String, Arc<AtomicUsize>>,
}

pub struct IssuerServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    routes: Arc<Mutex<Routes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IssuerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IssuerServer {
    /// Starts a server where every path answers 404 until set.
    pub async fn start() -> IssuerServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let routes = Arc::new(Mutex::new(Routes::default()));
        let shared = routes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let routes = shared.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&buf);
                    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                    let answer = {
                        let mut r = routes.lock().unwrap();
                        r.hits
                            .entry(path.clone())
                            .or_default()
                            .fetch_add(1, Ordering::SeqCst);
                        r.answers.get(&path).cloned().unwrap_or(Answer::Status(404))
                    };
                    let response = match answer {
                        Answer::Json {
                            body,
                            cache_control,
                        } => response(
                            "200 OK",
                            "application/json",
                            cache_control.as_deref(),
                            None,
                            body.as_bytes(),
                        ),
                        Answer::Status(code) => {
                            response(&format!("{code} Status"), "text/plain", None, None, b"")
                        }
                        Answer::Garbage => response(
                            "200 OK",
                            "application/json",
                            None,
                            None,
                            b"<html>oops</html>",
                        ),
                        Answer::Html => {
                            response("200 OK", "text/html", None, None, b"<html></html>")
                        }
                        Answer::Redirect(code, location) => response(
                            &format!("{code} Redirect"),
                            "text/plain",
                            None,
                            Some(&location),
                            b"",
                        ),
                        Answer::Hang(d) => {
                            tokio::time::sleep(d).await;
                            return;
                        }
                        Answer::Slow { body, delay } => {
                            tokio::time::sleep(delay).await;
                            response("200 OK", "application/json", None, None, body.as_bytes())
                        }
                        Answer::Close => return,
                    };
                    let _ = sock.write_all(&response).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        IssuerServer {
            base: format!("http://{addr}"),
            routes,
            task,
        }
    }

    /// Sets what `path` answers.
    pub fn set(&self, path: &str, answer: Answer) {
        self.routes
            .lock()
            .unwrap()
            .answers
            .insert(path.to_owned(), answer);
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.routes
            .lock()
            .unwrap()
            .hits
            .get(path)
            .map_or(0, |h| h.load(Ordering::SeqCst))
    }

    /// Waits (at most 10 s) until `path` received `n` requests.
    pub async fn wait_for_hits(&self, path: &str, n: usize) {
        let start = Instant::now();
        while self.hits(path) < n {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waited for {n} hits on {path}, got {}",
                self.hits(path)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Plays an OpenID provider with issuer `{base}{path}`: its metadata
    /// at `{path}/.well-known/openid-configuration`, naming its JWKS at
    /// `{path}/jwks`, which serves `keys`. Returns the issuer.
    pub fn provider(&self, path: &str, keys: &[&Key]) -> String {
        let issuer = format!("{}{path}", self.base);
        self.set(
            &format!("{path}/.well-known/openid-configuration"),
            Answer::json(metadata(&issuer, &format!("{issuer}/jwks"), None)),
        );
        self.set(&format!("{path}/jwks"), Answer::json(jwks(keys)));
        issuer
    }
}

/// A metadata document.
pub fn metadata(issuer: &str, jwks_uri: &str, algorithms: Option<&[&str]>) -> String {
    let mut doc = json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    });
    if let Some(algs) = algorithms {
        doc["id_token_signing_alg_values_supported"] = json!(algs);
    }
    doc.to_string()
}

fn response(
    status: &str,
    content_type: &str,
    cache_control: Option<&str>,
    location: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(cc) = cache_control {
        out.push_str(&format!("Cache-Control: {cc}\r\n"));
    }
    if let Some(l) = location {
        out.push_str(&format!("Location: {l}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A signing key of a test provider.
pub struct Key {
    pub key: SigningKey,
    pub alg: Algorithm,
    /// Whether its JWK names its algorithm.
    pub jwk_alg: bool,
}

impl Key {
    pub fn new(alg: Algorithm, kid: &str) -> Key {
        Key {
            key: SigningKey::generate(alg).unwrap().with_kid(kid),
            alg,
            jwk_alg: true,
        }
    }

    /// A key whose JWK has no `alg` (as Entra publishes them).
    pub fn without_jwk_alg(alg: Algorithm, kid: &str) -> Key {
        Key {
            jwk_alg: false,
            ..Key::new(alg, kid)
        }
    }

    pub fn kid(&self) -> &str {
        self.key.kid().unwrap()
    }

    pub fn jwk(&self) -> jwt_core::Jwk {
        let mut jwk = self.key.to_public_jwk().unwrap();
        jwk.alg = self.jwk_alg.then(|| self.alg.as_str().into());
        jwk
    }

    /// A token with these claims, and unless given an `iat` of a minute ago
    /// and an `exp` ten minutes ahead (on the system clock: a test clock
    /// started a moment earlier must not see the token as issued in the
    /// future).
    pub fn sign(&self, claims: Value) -> String {
        self.sign_with(self.alg, claims)
    }

    pub fn sign_with(&self, alg: Algorithm, mut claims: Value) -> String {
        let now = jwt_core::time::now_unix();
        let map = claims.as_object_mut().expect("claims are an object");
        map.entry("iat").or_insert(json!(now - 60));
        map.entry("exp").or_insert(json!(now + 600));
        let signer = Signer::new(
            SigningKey::from_pem(self.key.to_pkcs8_pem().unwrap().as_bytes())
                .unwrap()
                .with_kid(self.kid()),
            alg,
        )
        .unwrap();
        signer.sign(&claims).unwrap()
    }
}

pub fn jwks(keys: &[&Key]) -> String {
    Jwks {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    }
    .to_json()
}
