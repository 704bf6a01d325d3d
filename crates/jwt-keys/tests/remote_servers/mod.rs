//! Helpers for the KMS and Vault tests: unique store names, an independent
//! verifier (`jsonwebtoken`), and server processes the fault tests start,
//! stop and kill themselves (a `Drop` guard kills whatever is left).

#![allow(dead_code)] // each test file uses a different part

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use jwt_core::Jwks;

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Verifies `token` with `jsonwebtoken` against the published `jwks`
/// (`DecodingKey::from_jwk` on the key the header names), as a relying
/// party on another stack would. Returns the `sub` claim.
pub fn verify_independently(token: &str, jwks: &Jwks) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.clone().ok_or("no kid")?;
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid.as_str()))
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(serde_json::to_value(jwk).unwrap()).map_err(|e| e.to_string())?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map_err(|e| e.to_string())?;
    Ok(data.claims["sub"].as_str().unwrap_or_default().to_owned())
}

/// A server process owned by one test: killed (SIGKILL) and reaped on drop.
pub struct ServerProcess {
    name: &'static str,
    args: Vec<String>,
    child: Option<Child>,
    pub port: u16,
}

impl ServerProcess {
    /// Starts `program args…` and waits until `port` accepts connections.
    pub fn start(name: &'static str, program: &str, args: &[&str], port: u16) -> ServerProcess {
        let mut all = vec![program.to_owned()];
        all.extend(args.iter().map(|s| s.to_string()));
        let mut p = ServerProcess {
            name,
            args: all,
            child: None,
            port,
        };
        p.restart();
        p
    }

    /// Starts the same command again (after [`kill`](Self::kill)), on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        let child = Command::new(&self.args[0])
            .args(&self.args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} ({}): {e}", self.name, self.args[0]));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited during start-up: {status}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} not listening after 60 s",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and wait until the port is closed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process keeps its port open but answers nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGKILL ends a stopped (frozen) process too.
        self.kill();
    }
}
