//! `jwtkit-loadgen`: drives a running `jwtkit serve` on loopback at a fixed
//! concurrency for a fixed time and reports throughput and latency
//! percentiles, counting every response that is not the expected one.
//!
//! ```text
//! jwtkit-loadgen --url http://127.0.0.1:8080 --admin-token TOKEN --mode userinfo --concurrency 32 --seconds 20
//! jwtkit-loadgen --url http://127.0.0.1:8080 --admin-token TOKEN --mode userinfo-dpop --concurrency 32 --seconds 20
//! jwtkit-loadgen --url http://127.0.0.1:8080 --admin-token TOKEN --mode refresh  --concurrency 32 --seconds 20
//! ```
//!
//! `userinfo`: every worker sends `GET /userinfo` with one access token; 200 expected.
//! `userinfo-dpop`: every worker holds its own ES256 DPoP key
//! (`jwtkit::DpopClient`), gets a token bound to it (`POST /token` with a
//! proof), then sends `GET /userinfo` with `Authorization: DPoP` and a
//! proof signed afresh for every request (RFC 9449: the server refuses a
//! proof seen before); 200 expected. A `use_dpop_nonce` answer (a server
//! with `--dpop-nonce`) is retried once with the nonce, inside the same
//! timed request. `--url` must be the server's `--issuer` (the proofs name
//! it).
//! `refresh`: every worker holds its own session and refreshes it in a loop
//! (`POST /token`, `grant_type=refresh_token`), always presenting the newest
//! refresh token; 200 expected. Exit status 1 if any request failed.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use jwtkit::{Algorithm, DpopClient};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `GET /userinfo` with a bearer token.
    Userinfo,
    /// `GET /userinfo` with a DPoP-bound token and a fresh proof per request.
    UserinfoDpop,
    /// The refresh grant, one session per worker.
    Refresh,
}

/// Load generator for `jwtkit serve` (loopback only).
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the service; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The service's admin token (for `POST /token` with a subject).
    #[arg(long, env = "JWTKIT_ADMIN_TOKEN")]
    admin_token: String,
    /// What to load.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Concurrent workers (connections).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    latencies_us: Vec<u32>,
    first_failure: Option<String>,
}

/// A new session for `sub`: bound to `dpop`'s key when given (a nonce
/// challenge is answered once).
async fn issue(
    client: &reqwest::Client,
    args: &Args,
    sub: &str,
    dpop: Option<&DpopClient>,
) -> Result<TokenResponse, String> {
    let url = format!("{}/token", args.url);
    let mut nonce_retried = false;
    loop {
        let mut request = client
            .post(&url)
            .bearer_auth(&args.admin_token)
            .json(&serde_json::json!({"sub": sub, "claims": {"scope": "load"}}));
        if let Some(key) = dpop {
            let proof = key
                .proof("POST", &url, None)
                .map_err(|e| format!("DPoP proof: {e}"))?;
            request = request.header("DPoP", proof);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| format!("POST /token: {e}"))?;
        let status = resp.status();
        let nonce = observe_nonce(dpop, resp.headers());
        let body = resp
            .text()
            .await
            .map_err(|e| format!("POST /token body: {e}"))?;
        if status.is_success() {
            return serde_json::from_str(&body)
                .map_err(|e| format!("POST /token answered {body}: {e}"));
        }
        if nonce && !nonce_retried && body.contains("\"use_dpop_nonce\"") {
            nonce_retried = true;
            continue;
        }
        return Err(format!("POST /token answered {status}: {body}"));
    }
}

/// Remembers a response's `DPoP-Nonce` in `dpop`; `true` when there was one.
fn observe_nonce(dpop: Option<&DpopClient>, headers: &reqwest::header::HeaderMap) -> bool {
    match (
        dpop,
        headers.get("dpop-nonce").and_then(|v| v.to_str().ok()),
    ) {
        (Some(key), Some(nonce)) if !nonce.trim().is_empty() => {
            key.observe_nonce(nonce);
            true
        }
        _ => false,
    }
}

/// `GET /userinfo` with `Authorization: DPoP` and a proof made for this
/// request (its `jti` is new, its `ath` the token's hash); one retry when
/// the server asks for its nonce.
async fn dpop_userinfo(
    client: &reqwest::Client,
    args: &Args,
    key: &DpopClient,
    access: &str,
) -> Result<(), String> {
    let url = format!("{}/userinfo", args.url);
    for _ in 0..2 {
        let proof = key
            .proof("GET", &url, Some(access))
            .map_err(|e| format!("DPoP proof: {e}"))?;
        let resp = client
            .get(&url)
            .header("authorization", format!("DPoP {access}"))
            .header("DPoP", proof)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let nonce = observe_nonce(Some(key), resp.headers());
        if status.is_success() {
            return Ok(());
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !(nonce && challenge.contains("use_dpop_nonce")) {
            return Err(format!(
                "GET /userinfo (DPoP) answered {status}: {challenge}"
            ));
        }
    }
    Err("GET /userinfo (DPoP) still asks for a nonce after a retry with it".into())
}

async fn worker(client: reqwest::Client, args: Arc<Args>, id: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    // Each worker is one DPoP client with a key of its own.
    let dpop = match args.mode {
        Mode::UserinfoDpop => match DpopClient::generate(Algorithm::ES256) {
            Ok(key) => Some(key),
            Err(e) => {
                tally.failed += 1;
                tally.first_failure = Some(format!("DPoP key: {e}"));
                return tally;
            }
        },
        _ => None,
    };
    let mut pair = match issue(&client, &args, &format!("load-{id}"), dpop.as_ref()).await {
        Ok(p) => p,
        Err(e) => {
            tally.failed += 1;
            tally.first_failure = Some(e);
            return tally;
        }
    };
    while Instant::now() < deadline {
        let start = Instant::now();
        let result = match args.mode {
            Mode::Userinfo => client
                .get(format!("{}/userinfo", args.url))
                .bearer_auth(&pair.access_token)
                .send()
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    if r.status().is_success() {
                        Ok(None)
                    } else {
                        Err(format!("GET /userinfo answered {}", r.status()))
                    }
                }),
            Mode::UserinfoDpop => match &dpop {
                Some(key) => dpop_userinfo(&client, &args, key, &pair.access_token)
                    .await
                    .map(|()| None),
                None => Err("no DPoP key".into()),
            },
            Mode::Refresh => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", pair.refresh_token.as_str()),
                ];
                match client
                    .post(format!("{}/token", args.url))
                    .form(&form)
                    .send()
                    .await
                {
                    Err(e) => Err(e.to_string()),
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        if status.is_success() {
                            serde_json::from_str::<TokenResponse>(&body)
                                .map(Some)
                                .map_err(|e| format!("refresh answered {body}: {e}"))
                        } else {
                            Err(format!("refresh answered {status}: {body}"))
                        }
                    }
                }
            }
        };
        let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
        match result {
            Ok(next) => {
                tally.ok += 1;
                tally.latencies_us.push(micros);
                if let Some(next) = next {
                    pair = next;
                }
            }
            Err(e) => {
                tally.failed += 1;
                tally.first_failure.get_or_insert(e);
                // A failed refresh leaves this worker without a usable token.
                if matches!(args.mode, Mode::Refresh) {
                    break;
                }
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let loopback = reqwest::Url::parse(&args.url)
        .ok()
        .is_some_and(|u| match u.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        });
    if !loopback {
        eprintln!(
            "jwtkit-loadgen only targets loopback (127.0.0.0/8, [::1], localhost): refusing {}",
            args.url
        );
        return ExitCode::from(2);
    }
    if args.concurrency == 0 || args.seconds == 0 {
        eprintln!("--concurrency and --seconds must be above 0");
        return ExitCode::from(2);
    }
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot build the HTTP client: {e}");
            return ExitCode::from(2);
        }
    };
    let args = Arc::new(args);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let handles: Vec<_> = (0..args.concurrency)
        .map(|i| tokio::spawn(worker(client.clone(), args.clone(), i, deadline)))
        .collect();
    let mut total = Tally::default();
    for h in handles {
        match h.await {
            Ok(t) => {
                total.ok += t.ok;
                total.failed += t.failed;
                total.latencies_us.extend(t.latencies_us);
                if total.first_failure.is_none() {
                    total.first_failure = t.first_failure;
                }
            }
            Err(e) => {
                total.failed += 1;
                total
                    .first_failure
                    .get_or_insert(format!("worker panicked: {e}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let mode = args
        .mode
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let report = serde_json::json!({
        "mode": mode,
        "concurrency": args.concurrency,
        "seconds": elapsed,
        "ok": total.ok,
        "failed": total.failed,
        "throughput_per_s": total.ok as f64 / elapsed,
        "p50_ms": percentile(&total.latencies_us, 0.50),
        "p99_ms": percentile(&total.latencies_us, 0.99),
        "max_ms": percentile(&total.latencies_us, 1.0),
        "first_failure": total.first_failure,
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{}: {} ok, {} failed in {:.1}s at concurrency {} → {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            mode,
            total.ok,
            total.failed,
            elapsed,
            args.concurrency,
            total.ok as f64 / elapsed,
            percentile(&total.latencies_us, 0.50),
            percentile(&total.latencies_us, 0.99),
            percentile(&total.latencies_us, 1.0)
        );
        if let Some(f) = &total.first_failure {
            println!("first failure: {f}");
        }
    }
    if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
