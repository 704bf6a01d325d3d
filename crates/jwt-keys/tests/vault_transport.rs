//! Where the Vault store's token may travel, against fake servers on
//! loopback (no OpenBao needed): a redirect is never followed (the token
//! would go along to wherever it points), and a plain-http Vault is never
//! reached through a proxy from the environment (the proxy would see the
//! token in clear text). And what of an error answer reaches the error:
//! Vault's messages, cleaned, cut and without the token; never a body that
//! is not Vault's JSON.
#![cfg(feature = "vault")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jwt_keys::vault::{VaultError, VaultKeyStore};
use jwt_keys::{Error, KeyStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An HTTP server that answers every request with `reply` and keeps the
/// request heads it saw.
struct Recorder {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn recorder(reply: String) -> Recorder {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (seen, reply) = (seen.clone(), reply.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Recorder { url, heads, task }
}

fn store(addr: &str) -> VaultKeyStore {
    VaultKeyStore::builder("transit", "k")
        .address(addr)
        .token("s.redirect-me-not")
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A "Vault" that redirects every request elsewhere: the store stops
/// there with an error that says why; the other server never sees a
/// request, let alone the token.
#[tokio::test]
async fn a_redirect_is_never_followed() {
    let elsewhere = recorder(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".into(),
    )
    .await;
    let vault = recorder(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {}/v1/auth/token/lookup-self\r\nContent-Length: 0\r\n\r\n",
        elsewhere.url
    ))
    .await;
    let store = store(&vault.url);
    let err = store.active().await.unwrap_err();
    assert_eq!(err.kind(), "backend", "{err}");
    assert!(!err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 307") && text.contains("never followed"),
        "{text}"
    );
    assert!(!vault.heads.lock().unwrap().is_empty());
    assert!(
        elsewhere.heads.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
}

fn reply(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn vault_error(e: &Error) -> &VaultError {
    match e {
        Error::Backend { source, .. } => source
            .downcast_ref::<VaultError>()
            .unwrap_or_else(|| panic!("not a VaultError: {e:?}")),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// The store's first call (looking its token up) against a server that
/// answers every request with `answer`.
async fn error_for(answer: String) -> Error {
    let vault = recorder(answer).await;
    store(&vault.url).active().await.unwrap_err()
}

/// Vault's `errors` are quoted (the review found the docs promising them):
/// without Go's "1 error occurred:\n\t* " wrapping, control characters
/// escaped (a terminal escape from the network stays text), at most 300
/// characters each, and the store's token replaced wherever an answer
/// echoes it. A body that is not Vault's JSON (a proxy's error page, which
/// could echo the request and its token) is never quoted, only its size.
#[tokio::test]
async fn vault_messages_are_quoted_cleaned_and_never_hold_the_token() {
    let body = serde_json::json!({
        "errors": ["1 error occurred:\n\t* token s.redirect-me-not is \u{1b}[31mbad\n\t* and expired\n\n"]
    });
    let err = error_for(reply(
        "500 Internal Server Error",
        "application/json",
        &body.to_string(),
    ))
    .await;
    assert!(err.is_retryable(), "{err}");
    let v = vault_error(&err);
    assert_eq!(v.status(), Some(500));
    assert_eq!(
        v.messages(),
        ["token <redacted> is \\u{1b}[31mbad; and expired"]
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s.redirect-me-not"), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains("\n\t"), "{text}");
    assert!(
        err.to_string().contains(
            "(HTTP 500): token <redacted> is \\u{1b}[31mbad; and expired; Vault failed internally"
        ),
        "{err}"
    );

    let long = serde_json::json!({ "errors": ["x".repeat(1_000)] });
    let err = error_for(reply(
        "400 Bad Request",
        "application/json",
        &long.to_string(),
    ))
    .await;
    let message = &vault_error(&err).messages()[0];
    assert_eq!(message.chars().count(), 301, "{message}");
    assert!(message.ends_with("x…"), "{message}");

    // Only warnings (what a KV v2 mount answers for a transit path).
    let warned = serde_json::json!({ "data": null, "warnings": ["Invalid path for a versioned K/V secrets engine."] });
    let err = error_for(reply(
        "404 Not Found",
        "application/json",
        &warned.to_string(),
    ))
    .await;
    assert_eq!(
        vault_error(&err).messages(),
        ["Invalid path for a versioned K/V secrets engine."]
    );

    let page = "<html><body>502 upstream said: X-Vault-Token: s.redirect-me-not</body></html>";
    let err = error_for(reply("502 Bad Gateway", "text/html", page)).await;
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("s.redirect-me-not") && !text.contains("<html>"),
        "{text}"
    );
    assert!(
        err.to_string().contains(&format!(
            "(HTTP 502): the answer is not Vault's JSON ({} bytes, not shown",
            page.len()
        )),
        "{err}"
    );
}

const CHILD: &str = "JWTKEYS_VAULT_PROXY_CHILD";

/// `HTTP_PROXY`/`ALL_PROXY` point at a recording proxy; the Vault address
/// is plain http on a port nobody listens on. The store fails to connect
/// (a retryable error) and the proxy sees nothing. In a child process: it
/// sets process-wide proxy variables.
#[test]
fn a_plain_http_vault_is_never_reached_through_a_proxy() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "proxy_child", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn proxy_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let proxy = recorder(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".into(),
    )
    .await;
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::set_var(var, &proxy.url);
    }
    for var in ["NO_PROXY", "no_proxy"] {
        std::env::remove_var(var);
    }
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = store(&format!("http://127.0.0.1:{closed}"));
    let err = store.active().await.unwrap_err();
    assert_eq!(err.kind(), "backend", "{err}");
    assert!(
        err.is_retryable(),
        "a refused connection is retryable: {err}"
    );
    assert!(err.to_string().contains("could not reach Vault"), "{err}");
    assert!(
        proxy.heads.lock().unwrap().is_empty(),
        "the request went through the proxy: {:?}",
        proxy.heads.lock().unwrap()
    );
}
