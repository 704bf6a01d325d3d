//! Issue 11, item 12: a remote JWKS is fetched from the configured URL only
//! (a redirect is an error naming the status and the `Location`, never
//! followed), and a `kid` that names several keys in a JWKS gets each of
//! them tried (at most four), with one warning per fetched document.
//!
//! Real HTTP servers on 127.0.0.1; every test is bounded by a timeout.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::JwksServer;
use jwt_core::{Algorithm, Jwks, ManualClock, Signer, SigningKey, Validation};
use jwt_keys::{Error, KeySource, Verifier};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const T0: i64 = 1_700_000_000;

/// The warning test runs alone: tracing caches per call site whether anyone
/// listens, and a test thread without a subscriber hitting the same call
/// site at the same moment can make the warning test miss its event.
static SERIAL: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Runs `test` with a deadline, so that no test can hang.
async fn bounded<F: Future<Output = ()>>(test: F) {
    let _shared = SERIAL.read().await;
    deadline(test).await;
}

async fn deadline<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("the test took more than 30 s");
}

/// An HTTP server on 127.0.0.1 that answers every request with `status`
/// and `Location: location`, and counts its hits.
struct RedirectServer {
    url: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RedirectServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedirectServer {
    async fn start(status: u16, location: &str) -> RedirectServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let response = format!(
            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    continue;
                };
                let (counter, response) = (counter.clone(), response.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        RedirectServer {
            url: format!("http://{addr}/.well-known/jwks.json"),
            hits,
            task,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn key(kid: &str) -> SigningKey {
    SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid(kid)
}

fn jwk(key: &SigningKey) -> jwt_core::Jwk {
    let mut jwk = key.to_public_jwk().unwrap();
    jwk.alg = Some("ES256".into());
    jwk
}

fn jwks(keys: &[&SigningKey]) -> String {
    Jwks {
        keys: keys.iter().map(|k| jwk(k)).collect(),
    }
    .to_json()
}

fn token(key: &SigningKey) -> String {
    let copy = SigningKey::from_pem(key.to_pkcs8_pem().unwrap().as_bytes())
        .unwrap()
        .with_kid(key.kid().unwrap());
    Signer::new(copy, Algorithm::ES256)
        .unwrap()
        .sign(&json!({"sub": "alice", "iat": T0, "exp": T0 + 3600}))
        .unwrap()
}

fn remote_verifier(url: &str) -> Verifier {
    let clock = Arc::new(ManualClock::new(T0));
    Verifier::builder(
        KeySource::Remote(url.to_owned()),
        Validation::new([Algorithm::ES256]).clock(clock.clone()),
    )
    .clock(clock)
    .build()
    .unwrap()
}

async fn outcome(v: &Verifier, token: &str) -> Result<String, Error> {
    v.verify::<Value>(token)
        .await
        .map(|d| d.claims["sub"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_redirect_to_another_loopback_jwks_is_not_followed() {
    bounded(async {
        let signer = key("k1");
        let target = JwksServer::serving(jwks(&[&signer])).await;
        let redirect = RedirectServer::start(302, &target.url).await;
        let v = remote_verifier(&redirect.url);

        let err = outcome(&v, &token(&signer)).await.unwrap_err();
        assert_eq!(err.kind(), "fetch", "{err}");
        assert!(!err.is_retryable(), "a redirect is a configuration problem");
        let message = err.to_string();
        assert!(message.contains("HTTP 302"), "{message}");
        assert!(
            message.contains(&target.url),
            "names the Location: {message}"
        );
        assert!(
            message.contains("configure the final JWKS URL"),
            "{message}"
        );
        assert_eq!(redirect.hits(), 1);
        assert_eq!(target.hits(), 0, "the redirect target was fetched");
        assert!(v.cached_kids().is_empty());

        // The same through an explicit refresh, and for the other 3xx codes.
        for status in [301, 303, 307, 308] {
            let redirect = RedirectServer::start(status, &target.url).await;
            let v = remote_verifier(&redirect.url);
            let err = v.refresh().await.unwrap_err();
            assert!(err.to_string().contains(&format!("HTTP {status}")), "{err}");
        }
        assert_eq!(target.hits(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_redirect_to_plain_http_elsewhere_is_refused_and_named() {
    bounded(async {
        // https → http cannot be served here without TLS; the URL rule's
        // other half is the same: a non-loopback http:// target.
        let location = "http://jwks.example.invalid/keys";
        let redirect = RedirectServer::start(302, location).await;
        let v = remote_verifier(&redirect.url);
        let err = v.refresh().await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("HTTP 302"), "{message}");
        assert!(
            message.contains("redirecting to http://jwks.example.invalid/keys"),
            "{message}"
        );
        // Refused on the redirect itself, not on a failed look-up of the target.
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source
                .to_string()
                .starts_with("the server answered HTTP 302 redirecting to"),
            "{source}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_hostile_location_is_quoted_escaped() {
    bounded(async {
        // obs-text bytes are legal in a header value; they must not reach a log raw.
        let location = "http://127.0.0.1:1/\u{80}\u{9b}31mvalid";
        let redirect = RedirectServer::start(302, location).await;
        let v = remote_verifier(&redirect.url);
        let message = v.refresh().await.unwrap_err().to_string();
        assert!(!message.contains('\u{9b}'), "{message:?}");
        assert!(message.contains("\\xc2\\x9b31mvalid"), "{message:?}");
    })
    .await;
}

#[tokio::test]
async fn a_token_signed_by_the_second_key_of_a_duplicated_kid_verifies() {
    bounded(async {
        let first = key("dup");
        let second = key("dup");
        let other = key("other");
        let server = JwksServer::serving(jwks(&[&first, &other, &second])).await;
        let v = remote_verifier(&server.url);
        assert_eq!(outcome(&v, &token(&second)).await.unwrap(), "alice");
        assert_eq!(outcome(&v, &token(&first)).await.unwrap(), "alice");
        assert_eq!(outcome(&v, &token(&other)).await.unwrap(), "alice");
        // A key under another kid is never tried for this kid.
        let forged = key("dup");
        let err = outcome(&v, &token(&forged)).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_signature", "{err}");
        assert_eq!(server.hits(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_fixed_jwks_with_a_duplicated_kid_tries_each_key() {
    bounded(async {
        let first = key("dup");
        let second = key("dup");
        let jwks = Jwks {
            keys: vec![jwk(&first), jwk(&second)],
        };
        let clock = Arc::new(ManualClock::new(T0));
        let v = Verifier::new(
            KeySource::Jwks(jwks),
            Validation::new([Algorithm::ES256]).clock(clock),
        )
        .unwrap();
        assert_eq!(outcome(&v, &token(&second)).await.unwrap(), "alice");
    })
    .await;
}

#[tokio::test]
async fn at_most_four_keys_are_tried_for_one_kid() {
    bounded(async {
        let keys: Vec<SigningKey> = (0..5).map(|_| key("dup")).collect();
        let refs: Vec<&SigningKey> = keys.iter().collect();
        let server = JwksServer::serving(jwks(&refs)).await;
        let v = remote_verifier(&server.url);
        for k in &keys[..4] {
            assert_eq!(outcome(&v, &token(k)).await.unwrap(), "alice");
        }
        let err = outcome(&v, &token(&keys[4])).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_signature", "{err}");
        // The fifth key's token does not cause a refetch either (kid is known).
        assert_eq!(server.hits(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_claims_rejection_after_a_matching_signature_is_final() {
    bounded(async {
        let first = key("dup");
        let second = key("dup");
        let server = JwksServer::serving(jwks(&[&first, &second])).await;
        let clock = Arc::new(ManualClock::new(T0 + 7200));
        let v = Verifier::builder(
            KeySource::Remote(server.url.clone()),
            Validation::new([Algorithm::ES256]).clock(clock.clone()),
        )
        .clock(clock)
        .build()
        .unwrap();
        let err = outcome(&v, &token(&second)).await.unwrap_err();
        assert_eq!(err.kind(), "expired", "{err}");
    })
    .await;
}

/// Counts WARN events whose message mentions duplicated kids.
#[derive(Clone, Default)]
struct WarnCounter {
    messages: Arc<Mutex<Vec<String>>>,
}

struct MessageVisitor<'a>(&'a mut String);

impl tracing::field::Visit for MessageVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for WarnCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = String::new();
            event.record(&mut MessageVisitor(&mut text));
            self.messages.lock().unwrap().push(text);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl WarnCounter {
    fn duplicate_warnings(&self) -> Vec<String> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains("several keys under one kid"))
            .cloned()
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn duplicated_kids_are_warned_about_once_per_document() {
    let _alone = SERIAL.write().await;
    let counter = WarnCounter::default();
    let _guard = tracing::subscriber::set_default(counter.clone());
    deadline(async {
        let first = key("dup\u{1b}[31m");
        let second = key("dup\u{1b}[31m");
        let server = JwksServer::serving(jwks(&[&first, &second])).await;
        let v = remote_verifier(&server.url);
        for _ in 0..5 {
            assert_eq!(outcome(&v, &token(&second)).await.unwrap(), "alice");
        }
        let warnings = counter.duplicate_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("(2 keys)"), "{warnings:?}");
        // The kid came from the document: escaped, not raw.
        assert!(!warnings[0].contains('\u{1b}'), "{warnings:?}");
        assert!(warnings[0].contains("\\u{1b}[31m"), "{warnings:?}");
        // A new document, a new warning.
        v.refresh().await.unwrap();
        assert_eq!(counter.duplicate_warnings().len(), 2);
        assert_eq!(server.hits(), 2);
    })
    .await;
}
