//! The accept loop of `jwtkit serve`: a bounded number of connections, a
//! header-read timeout, an idle keep-alive timeout and a bounded graceful
//! shutdown. `axum::serve` offers none of these, and without them a few
//! hundred clients that send half a request line hold the server (and its
//! shutdown) for as long as they like.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::metrics::RequestMetrics;

/// The connection settings of `jwtkit serve` (see `config.rs` for their bounds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time to receive a request's headers, from the connection's start or the
    /// end of the previous response.
    pub(crate) header_read_timeout: Duration,
    /// Idle time allowed between keep-alive requests; zero turns keep-alive off.
    pub(crate) keep_alive_timeout: Duration,
    /// Time open connections get to finish after the shutdown signal.
    pub(crate) shutdown_timeout: Duration,
    /// Connections served at once.
    pub(crate) max_connections: usize,
}

/// What a connection serves: the router, and the request metrics to
/// record around it (when metrics are on).
struct Served {
    router: Router,
    requests: Option<Arc<RequestMetrics>>,
    /// `--trusted-proxy`: peers whose `X-Forwarded-For` names the client.
    trusted_proxies: Arc<[IpNet]>,
}

/// The client's address as the handlers see it (the failed-authentication
/// limit, the audit records): the TCP peer, or for a peer that is a trusted
/// proxy, what its `X-Forwarded-For` says (see [`forwarded_client`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// The client behind `peer`: `peer` itself unless it is a trusted proxy;
/// then the last `X-Forwarded-For` address that is not a trusted proxy
/// (each proxy appends the address it received the request from, so the
/// entries left of the first untrusted one may be anything the client
/// wrote). An entry that is not an address stops the walk at the last
/// trusted hop; with no header, or nothing but trusted hops, it is the
/// leftmost trusted address seen.
pub(crate) fn forwarded_client(
    peer: IpAddr,
    headers: &hyper::HeaderMap,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    // A listener on `[::]` sees IPv4 peers as `::ffff:a.b.c.d`: they are
    // the IPv4 addresses `--trusted-proxy` names (and the audit shows).
    let peer = unmapped(peer);
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Some(ip) = parse_forwarded(entry.trim()) else {
            return client;
        };
        let ip = unmapped(ip);
        if !is_trusted(&ip) {
            return ip;
        }
        client = ip;
    }
    client
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.1`) is that address.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The most a connection buffers while reading a request's head (request
/// line and headers).
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Pause after an accept error (e.g. `Too many open files`), so the loop does
/// not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// At most one "connection limit reached" warning per this interval: a
/// server hovering at its limit would otherwise log every time a slot frees
/// and is taken again.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `shutdown` completes, then lets open
/// connections finish for at most `limits.shutdown_timeout` and closes the rest.
///
/// With `requests`, every request's duration is recorded by route and
/// status class, around the whole router (its 408s and 413s included).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    requests: Option<Arc<RequestMetrics>>,
    trusted_proxies: Arc<[IpNet]>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // hyper buffers up to ~400 KiB of request head by default: 512
        // connections sending unfinished heads held 200 MB. 64 KiB fits any
        // real request (a large token is a few KiB); more is answered 431.
        .max_buf_size(MAX_HEAD_BYTES)
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(!limits.keep_alive_timeout.is_zero());
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    let mut at_limit = false;
    // When the limit warning was last logged, and how often the limit was
    // hit since then without a log line.
    let mut limit_logged: Option<Instant> = None;
    let mut limit_hits_unlogged: u64 = 0;
    tokio::pin!(shutdown);

    loop {
        while connections.try_join_next().is_some() {}
        // A permit before accepting: at the limit, new connections wait in the
        // listen backlog (no file descriptor spent) until one closes.
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                if at_limit {
                    at_limit = false;
                    if limit_hits_unlogged == 0 {
                        tracing::info!(
                            max_connections = limits.max_connections,
                            "below the connection limit again; accepting connections"
                        );
                    }
                }
                permit
            }
            Err(_) => {
                if !at_limit {
                    at_limit = true;
                    let due = limit_logged.is_none_or(|t| t.elapsed() >= LIMIT_LOG_INTERVAL);
                    if due {
                        tracing::warn!(
                            max_connections = limits.max_connections,
                            times_since_last_warning = limit_hits_unlogged,
                            "connection limit reached: new connections wait until one closes \
                             (raise --max-connections if this is normal load; logged at most \
                             once a minute)"
                        );
                        limit_logged = Some(Instant::now());
                        limit_hits_unlogged = 0;
                    } else {
                        limit_hits_unlogged += 1;
                    }
                }
                tokio::select! {
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        // Never closed; stop serving rather than spin if it were.
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept error; retrying shortly");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        connections.spawn(serve_connection(
            stream,
            peer,
            Served {
                router: app.clone(),
                requests: requests.clone(),
                trusted_proxies: Arc::clone(&trusted_proxies),
            },
            Arc::clone(&builder),
            limits,
            stop_rx.clone(),
            permit,
        ));
    }

    // Stop accepting, then ask every connection to finish its request and close.
    drop(listener);
    let _ = stop_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            open,
            timeout = ?limits.shutdown_timeout,
            "waiting for open connections to finish"
        );
    }
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            timeout = ?limits.shutdown_timeout,
            "connections still open after the shutdown timeout; closing them"
        );
        connections.shutdown().await;
    }
}

/// Serves one connection until it closes, its keep-alive idle time runs out,
/// or the server stops (then the current request finishes first).
///
/// A connection asked to close gets `header_read_timeout` to do so, then it
/// is dropped: a client that pipelines requests and never reads the
/// responses blocks hyper's write for ever, and a graceful close waits for
/// that write. Without keep-alive the same watchdog runs on the header-read
/// timeout, so no connection outlives a stalled write by more than twice it.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Served,
    builder: Arc<http1::Builder>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        let Served {
            router,
            requests,
            trusted_proxies,
        } = app;
        let app = TowerToHyperService::new(router);
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            // The client's address for the handlers, as axum's
            // `into_make_service_with_connect_info` would give it.
            request.extensions_mut().insert(ConnectInfo(peer));
            let client = forwarded_client(peer.ip(), request.headers(), &trusted_proxies);
            request.extensions_mut().insert(ClientIp(client));
            let busy = activity.begin();
            let timed = requests.as_ref().map(|metrics| {
                (
                    Arc::clone(metrics),
                    metrics.route_of(request.uri().path()),
                    std::time::Instant::now(),
                )
            });
            let response = hyper::service::Service::call(&app, request);
            async move {
                let response = response.await;
                if let (Some((metrics, route, start)), Ok(response)) = (timed, &response) {
                    metrics.record(route, response, start.elapsed());
                }
                drop(busy);
                response
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let idle_timeout = if limits.keep_alive_timeout.is_zero() {
        limits.header_read_timeout
    } else {
        limits.keep_alive_timeout
    };
    let mut closing = false;
    let close_deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(close_deadline);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    // Header timeouts, resets and malformed requests: the
                    // client's doing, not a server fault.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
                close_deadline.as_mut().reset(Instant::now() + limits.header_read_timeout);
            }
            () = activity.idle_for(idle_timeout), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
                close_deadline.as_mut().reset(Instant::now() + limits.header_read_timeout);
            }
            () = &mut close_deadline, if closing => {
                tracing::debug!("connection did not close in time (a response the client does not read); dropping it");
                return;
            }
        }
    }
}

/// Whether a connection has a request in flight, and since when it is idle.
#[derive(Debug, Clone, Copy)]
struct ConnState {
    in_flight: usize,
    /// Set when the last response was produced; `None` before the first
    /// request (hyper's header-read timeout covers that time).
    idle_since: Option<Instant>,
}

/// Request activity on one connection, for its keep-alive idle timeout.
struct Activity {
    state: watch::Sender<ConnState>,
}

/// Marks a request in flight until dropped.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Activity {
            state: watch::Sender::new(ConnState {
                in_flight: 0,
                idle_since: None,
            }),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.state.send_modify(|s| {
            s.in_flight += 1;
            s.idle_since = None;
        });
        Busy(Arc::clone(self))
    }

    /// Completes once the connection has been idle for `timeout` after a response.
    async fn idle_for(&self, timeout: Duration) {
        let mut state = self.state.subscribe();
        loop {
            let now = *state.borrow_and_update();
            match now {
                ConnState {
                    in_flight: 0,
                    idle_since: Some(since),
                } => {
                    tokio::select! {
                        () = tokio::time::sleep_until(since + timeout) => return,
                        _ = state.changed() => {}
                    }
                }
                _ => {
                    // The sender lives as long as `self`.
                    let _ = state.changed().await;
                }
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.state.send_modify(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0 {
                s.idle_since = Some(Instant::now());
            }
        });
    }
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;

    fn headers(values: &[&str]) -> hyper::HeaderMap {
        let mut map = hyper::HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// The client is the last untrusted hop; the header is believed only
    /// from a trusted peer, and only as far as the proxies are trusted.
    #[test]
    fn the_client_is_the_last_address_no_trusted_proxy_wrote() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        let cases: &[(&str, &[&str], &str)] = &[
            // Not from a proxy: the header is anyone's writing.
            ("203.0.113.9", &["198.51.100.1"], "203.0.113.9"),
            // A proxy seen by a `[::]` listener as an IPv4-mapped address.
            ("::ffff:10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
            ("::ffff:203.0.113.9", &["198.51.100.1"], "203.0.113.9"),
            // From a proxy: the address it saw.
            ("10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
            // A client's forged entries are left of the one the proxy wrote.
            ("10.0.0.2", &["1.2.3.4, 198.51.100.1"], "198.51.100.1"),
            // Two proxies, in two headers.
            (
                "10.0.0.2",
                &["6.6.6.6, 198.51.100.1", "10.0.0.7"],
                "198.51.100.1",
            ),
            // Ports and IPv4-mapped IPv6 addresses.
            ("10.0.0.2", &["198.51.100.1:4711"], "198.51.100.1"),
            ("10.0.0.2", &["[2001:db8::1]:443"], "2001:db8::1"),
            ("10.0.0.2", &["::ffff:198.51.100.1"], "198.51.100.1"),
            ("fd00::1", &["2001:db8::5"], "2001:db8::5"),
            // Garbage stops the walk at the last trusted hop.
            ("10.0.0.2", &["198.51.100.1, unknown"], "10.0.0.2"),
            ("10.0.0.2", &["198.51.100.1, 10.0.0.3, garbage"], "10.0.0.2"),
            ("10.0.0.2", &["198.51.100.1, garbage, 10.0.0.3"], "10.0.0.3"),
            // Nothing but proxies, or no header: the leftmost proxy.
            ("10.0.0.2", &["10.0.0.5, 10.0.0.6"], "10.0.0.5"),
            ("10.0.0.2", &[], "10.0.0.2"),
        ];
        for (peer, values, client) in cases {
            assert_eq!(
                forwarded_client(ip(peer), &headers(values), &trusted),
                ip(client),
                "peer {peer}, X-Forwarded-For {values:?}"
            );
        }
        // Without trusted proxies the header is never read.
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), &headers(&["198.51.100.1"]), &[]),
            ip("10.0.0.2")
        );
    }
}
