//! Discovery against a real HTTP server on 127.0.0.1 that the test
//! controls: the RFC 8414 fallback, garbage and mismatched metadata,
//! redirects, a JWKS that goes down (stale-if-error), slow endpoints, the
//! metadata's own TTL, the algorithms the metadata declares, and what
//! `discover` reports.

mod issuer_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use issuer_server::{jwks, metadata, Answer, IssuerServer, Key};
use jwt_core::{Algorithm, ManualClock};
use jwt_keys::discovery::{MetadataError, MetadataKind};
use jwt_keys::{CacheOptions, Error, ErrorKind, Issuer, MultiIssuerVerifier};
use serde_json::{json, Value};

fn verifier(
    clock: &Arc<ManualClock>,
    options: CacheOptions,
    issuers: Vec<Issuer>,
) -> MultiIssuerVerifier {
    let mut builder = MultiIssuerVerifier::builder()
        .clock(clock.clone())
        .cache(options);
    for issuer in issuers {
        builder = builder.issuer(issuer);
    }
    builder.build().unwrap()
}

fn kind(result: &Result<jwt_core::TokenData<Value>, Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => e.kind().as_str().into(),
    }
}

/// The metadata error inside a discovery failure.
fn metadata_error(err: &Error) -> &MetadataError {
    match err {
        Error::Backend {
            backend, source, ..
        } => {
            assert_eq!(*backend, "OpenID discovery", "{err}");
            source
                .downcast_ref::<MetadataError>()
                .unwrap_or_else(|| panic!("not a MetadataError: {err}"))
        }
        other => panic!("expected a discovery failure, got {other:?}"),
    }
}

/// An issuer with a path publishes RFC 8414 metadata only: after the
/// OpenID location answers 404, the metadata is found at the inserted
/// location, and its keys verify the issuer's tokens.
#[tokio::test]
async fn rfc_8414_metadata_is_found_when_the_openid_location_is_absent() {
    let server = IssuerServer::start().await;
    let key = Key::new(Algorithm::ES256, "k1");
    let issuer = format!("{}/tenant/a", server.base);
    server.set(
        "/.well-known/oauth-authorization-server/tenant/a",
        Answer::json(metadata(&issuer, &format!("{}/keys", server.base), None)),
    );
    server.set("/keys", Answer::json(jwks(&[&key])));
    let clock = Arc::new(ManualClock::starting_now());
    let v = verifier(
        &clock,
        CacheOptions::default(),
        vec![Issuer::discover(&issuer).audience("api")],
    );
    let token = key.sign(json!({"iss": issuer, "aud": "api", "sub": "alice"}));
    let data = v.verify::<Value>(&token).await.unwrap();
    assert_eq!(data.claims["sub"], "alice");
    assert_eq!(server.hits("/tenant/a/.well-known/openid-configuration"), 1);
    assert_eq!(
        server.hits("/.well-known/oauth-authorization-server/tenant/a"),
        1
    );
    let found = v.metadata(&issuer).unwrap();
    assert_eq!(found.kind(), MetadataKind::OAuthAuthorizationServer);
    assert_eq!(
        found.url(),
        format!(
            "{}/.well-known/oauth-authorization-server/tenant/a",
            server.base
        )
    );

    // `discover` finds it the same way.
    let found = jwt_keys::discover(&issuer, &CacheOptions::default())
        .await
        .unwrap();
    assert_eq!(
        found.metadata().kind(),
        MetadataKind::OAuthAuthorizationServer
    );
    assert_eq!(found.keys().len(), 1);
}

/// Neither location: the error names both URLs and statuses, and is not
/// retryable (the issuer URL is wrong).
#[tokio::test]
async fn an_issuer_without_metadata_is_named_with_both_locations() {
    let server = IssuerServer::start().await;
    server.set("/t/.well-known/openid-configuration", Answer::Status(404));
    server.set(
        "/.well-known/oauth-authorization-server/t",
        Answer::Status(410),
    );
    let issuer = format!("{}/t", server.base);
    let err = jwt_keys::discover(&issuer, &CacheOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert!(!err.is_retryable(), "{err}");
    match metadata_error(&err) {
        MetadataError::NotFound {
            openid_status,
            oauth_status,
            ..
        } => assert_eq!((*openid_status, *oauth_status), (404, 410)),
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "{issuer}/.well-known/openid-configuration answered HTTP 404"
        )) && text.contains(&format!(
            "{}/.well-known/oauth-authorization-server/t answered HTTP 410",
            server.base
        )),
        "{text}"
    );
    // A server error at the OpenID location is not "absent": no fallback.
    server.set("/t/.well-known/openid-configuration", Answer::Status(503));
    let err = jwt_keys::discover(&issuer, &CacheOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("answered HTTP 503"), "{err}");
    assert_eq!(server.hits("/.well-known/oauth-authorization-server/t"), 1);
}

/// OpenID Connect Discovery §4.3: metadata naming another issuer is a
/// configuration error that says both values, and no key of it is used.
#[tokio::test]
async fn metadata_naming_another_issuer_is_refused_with_both_values() {
    let server = IssuerServer::start().await;
    let key = Key::new(Algorithm::ES256, "k1");
    let issuer = format!("{}/good", server.base);
    let impostor = format!("{}/evil", server.base);
    server.set(
        "/good/.well-known/openid-configuration",
        Answer::json(metadata(&impostor, &format!("{}/jwks", server.base), None)),
    );
    server.set("/jwks", Answer::json(jwks(&[&key])));
    let clock = Arc::new(ManualClock::starting_now());
    let v = verifier(
        &clock,
        CacheOptions::default(),
        vec![Issuer::discover(&issuer)],
    );
    let err = v
        .verify::<Value>(&key.sign(json!({"iss": issuer})))
        .await
        .unwrap_err();
    match &err {
        Error::InvalidConfig { setting, reason } => {
            assert_eq!(*setting, "issuer");
            assert!(
                reason.contains(&format!("names the issuer {impostor:?}"))
                    && reason.contains(&format!("the configured issuer is {issuer:?}")),
                "{reason}"
            );
        }
        other => panic!("expected invalid_config, got {other:?}"),
    }
    assert!(!err.is_rejection());
    assert_eq!(
        server.hits("/jwks"),
        0,
        "no key of a mismatched issuer is fetched"
    );
    // A trailing slash is a different issuer (exact comparison).
    let err = jwt_keys::discover(&format!("{issuer}/"), &CacheOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
}

/// Metadata that is not usable says what it is, for every kind of garbage.
#[tokio::test]
async fn garbage_metadata_is_refused_saying_what_came() {
    let server = IssuerServer::start().await;
    let issuer = format!("{}/g", server.base);
    let path = "/g/.well-known/openid-configuration";
    let cases: Vec<(Answer, &str)> = vec![
        (Answer::Garbage, "the document is not valid JSON"),
        (Answer::Html, "not JSON (a web page at the well-known URL?)"),
        (
            Answer::json("[]"),
            "the document must be a JSON object, found an array",
        ),
        (Answer::json("{}"), "it has no `issuer`"),
        (
            Answer::json(json!({"issuer": issuer}).to_string()),
            "it has no `jwks_uri`: the issuer publishes no keys",
        ),
        (
            Answer::json(format!(
                r#"{{"issuer":"{issuer}","issuer":"{issuer}","jwks_uri":"x"}}"#
            )),
            "duplicate member name \"issuer\"",
        ),
        (
            Answer::json(json!({"issuer": issuer, "jwks_uri": 3}).to_string()),
            "its `jwks_uri` is a number, not a string",
        ),
        (Answer::json(""), "the body is empty"),
    ];
    for (answer, expected) in cases {
        server.set(path, answer.clone());
        let err = jwt_keys::discover(&issuer, &CacheOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(metadata_error(&err), MetadataError::Invalid { .. }),
            "{answer:?}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(expected), "{answer:?}: {text}");
        assert!(
            text.contains(&format!("{issuer}/.well-known/openid-configuration")),
            "{text}"
        );
        // A garbled document may be a deploy in progress.
        assert!(err.is_retryable(), "{answer:?}");
    }
    // A body over the limit is refused before it is read in full.
    server.set(
        path,
        Answer::json(format!("{{\"pad\":\"{}\"}}", "a".repeat(4096))),
    );
    let err = jwt_keys::discover(&issuer, &CacheOptions::default().with_max_body_bytes(1024))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("larger than the 1024-byte limit"),
        "{err}"
    );
    // A jwks_uri in clear text to another host is refused by the JWKS URL rule.
    server.set(
        path,
        Answer::json(metadata(&issuer, "http://keys.example.com/jwks", None)),
    );
    let err = jwt_keys::discover(&issuer, &CacheOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUri, "{err}");
    assert!(
        err.to_string().contains("only to a loopback address"),
        "{err}"
    );
}

/// A redirect at the metadata URL is not followed, and says where it led.
#[tokio::test]
async fn a_metadata_redirect_is_not_followed() {
    let server = IssuerServer::start().await;
    let issuer = format!("{}/r", server.base);
    let target = format!("{}/elsewhere", server.base);
    server.set(
        "/r/.well-known/openid-configuration",
        Answer::Redirect(302, target.clone()),
    );
    server.set(
        "/elsewhere",
        Answer::json(metadata(&issuer, &format!("{}/jwks", server.base), None)),
    );
    let err = jwt_keys::discover(&issuer, &CacheOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            metadata_error(&err),
            MetadataError::Redirect { status: 302, .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("redirecting to {target}")),
        "{err}"
    );
    assert_eq!(server.hits("/elsewhere"), 0);
}

/// The JWKS goes down after the first load: the last good key set keeps
/// verifying past its TTL (stale-if-error), while refreshes are tried.
#[tokio::test]
async fn a_jwks_uri_that_goes_down_is_served_stale() {
    let server = IssuerServer::start().await;
    let key = Key::new(Algorithm::RS256, "rsa-1");
    let issuer = server.provider("/idp", &[&key]);
    let clock = Arc::new(ManualClock::starting_now());
    let v = verifier(
        &clock,
        CacheOptions::default().with_max_stale(Duration::from_secs(7200)),
        vec![Issuer::discover(&issuer)],
    );
    let exp = jwt_core::Clock::now(&*clock) + 86_400;
    let token = key.sign(json!({"iss": issuer, "exp": exp}));
    assert_eq!(kind(&v.verify::<Value>(&token).await), "ok");
    let mut hits = 1;
    for failure in [
        Answer::Status(500),
        Answer::Close,
        Answer::Garbage,
        Answer::Html,
    ] {
        server.set("/idp/jwks", failure.clone());
        clock.advance(601);
        assert_eq!(kind(&v.verify::<Value>(&token).await), "ok", "{failure:?}");
        hits += 1;
        // The background refresh happened, and failed.
        server.wait_for_hits("/idp/jwks", hits).await;
        assert_eq!(kind(&v.verify::<Value>(&token).await), "ok", "{failure:?}");
    }
    // Past max_stale with the provider still down: the keys are refused.
    clock.advance(7200);
    let err = v.verify_cached::<Value>(&token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StaleKeys, "{err}");
}

/// The metadata has its own TTL: it is read again when it expires (not on
/// every key-set load), a failed re-read keeps the last good metadata, and
/// a changed `jwks_uri` is followed.
#[tokio::test]
async fn the_metadata_is_read_again_on_its_own_ttl() {
    let server = IssuerServer::start().await;
    let old = Key::new(Algorithm::ES256, "old");
    let new = Key::new(Algorithm::ES256, "new");
    let issuer = format!("{}/m", server.base);
    let meta = "/m/.well-known/openid-configuration";
    server.set(
        meta,
        Answer::json_max_age(metadata(&issuer, &format!("{issuer}/jwks-1"), None), 300),
    );
    server.set("/m/jwks-1", Answer::json_max_age(jwks(&[&old]), 100));
    let clock = Arc::new(ManualClock::starting_now());
    let v = verifier(
        &clock,
        CacheOptions::default().with_refresh_ahead(Duration::ZERO),
        vec![Issuer::discover(&issuer)],
    );
    let exp = jwt_core::Clock::now(&*clock) + 86_400;
    let old_token = old.sign(json!({"iss": issuer, "exp": exp}));
    assert_eq!(kind(&v.verify::<Value>(&old_token).await), "ok");
    assert_eq!((server.hits(meta), server.hits("/m/jwks-1")), (1, 1));

    // The key set expires first: it is reloaded, the metadata is not.
    clock.advance(101);
    v.verify::<Value>(&old_token).await.unwrap();
    server.wait_for_hits("/m/jwks-1", 2).await;
    assert_eq!(server.hits(meta), 1);

    // The metadata expires, and its re-read fails: the keys still serve,
    // from the last good metadata's jwks_uri.
    server.set(meta, Answer::Status(500));
    clock.advance(200);
    v.verify::<Value>(&old_token).await.unwrap();
    server.wait_for_hits("/m/jwks-1", 3).await;
    assert_eq!(server.hits(meta), 2);
    assert_eq!(v.metadata_fetch_count(&issuer), Some(1));

    // The provider moves its keys: the next metadata read follows them.
    server.set(
        meta,
        Answer::json_max_age(metadata(&issuer, &format!("{issuer}/jwks-2"), None), 300),
    );
    server.set("/m/jwks-2", Answer::json_max_age(jwks(&[&new]), 100));
    clock.advance(61);
    let new_token = new.sign(json!({"iss": issuer, "exp": exp}));
    assert_eq!(kind(&v.verify::<Value>(&new_token).await), "ok");
    assert_eq!(server.hits("/m/jwks-2"), 1);
    assert_eq!(v.metadata_fetch_count(&issuer), Some(2));
    assert_eq!(
        v.metadata(&issuer).unwrap().jwks_uri(),
        format!("{issuer}/jwks-2")
    );
    // The old key is gone with the old key set.
    assert_eq!(kind(&v.verify::<Value>(&old_token).await), "unknown_key");
}

/// Endpoints that hang: every fetch is bounded by `fetch_timeout`, and the
/// error says the server did not answer in time.
#[tokio::test]
async fn slow_endpoints_time_out() {
    let server = IssuerServer::start().await;
    let key = Key::new(Algorithm::ES256, "k");
    let issuer = server.provider("/slow", &[&key]);
    let options = CacheOptions::default().with_fetch_timeout(Duration::from_secs(1));
    let token = key.sign(json!({"iss": issuer}));

    // Slow, but within the timeout: fine.
    server.set(
        "/slow/jwks",
        Answer::Slow {
            body: jwks(&[&key]),
            delay: Duration::from_millis(300),
        },
    );
    let clock = Arc::new(ManualClock::starting_now());
    let v = verifier(&clock, options.clone(), vec![Issuer::discover(&issuer)]);
    assert_eq!(kind(&v.verify::<Value>(&token).await), "ok");

    for path in ["/slow/.well-known/openid-configuration", "/slow/jwks"] {
        let v = verifier(&clock, options.clone(), vec![Issuer::discover(&issuer)]);
        server.set(path, Answer::Hang(Duration::from_secs(30)));
        let start = Instant::now();
        let err = v.verify::<Value>(&token).await.unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            start.elapsed()
        );
        assert!(err.is_retryable(), "{path}: {err}");
        assert!(
            err.to_string().contains("did not answer in time"),
            "{path}: {err}"
        );
        let expected = if path.ends_with("jwks") {
            ErrorKind::Fetch
        } else {
            ErrorKind::Backend
        };
        assert_eq!(err.kind(), expected, "{path}: {err}");
        // Put it back for the next case.
        server.provider("/slow", &[&key]);
    }
}

/// The algorithms a key verifies with, by default: its JWK's `alg` if the
/// metadata declares it; the declared ones of its type if it names none;
/// nothing (a configuration error saying so) when nothing is declared.
/// Named algorithms replace all that.
#[tokio::test]
async fn the_metadata_constrains_the_default_algorithms() {
    let server = IssuerServer::start().await;
    let bound_rs = Key::new(Algorithm::RS256, "bound-rs");
    let bare_ec = Key::without_jwk_alg(Algorithm::ES256, "bare-ec");
    let bare_rsa = Key::without_jwk_alg(Algorithm::RS256, "bare-rsa");
    let issuer = format!("{}/algs", server.base);
    let meta = "/algs/.well-known/openid-configuration";
    let jwks_uri = format!("{issuer}/jwks");
    server.set(
        "/algs/jwks",
        Answer::json(jwks(&[&bound_rs, &bare_ec, &bare_rsa])),
    );
    let clock = Arc::new(ManualClock::starting_now());
    let rs = bound_rs.sign(json!({"iss": issuer}));
    let ec = bare_ec.sign(json!({"iss": issuer}));
    let bare_rs256 = bare_rsa.sign_with(Algorithm::RS256, json!({"iss": issuer}));
    let bare_ps256 = bare_rsa.sign_with(Algorithm::PS256, json!({"iss": issuer}));

    // Declared: ES256 only (and HS256, which is ignored).
    server.set(
        meta,
        Answer::json(metadata(&issuer, &jwks_uri, Some(&["ES256", "HS256"]))),
    );
    let v = verifier(
        &clock,
        CacheOptions::default(),
        vec![Issuer::discover(&issuer)],
    );
    assert_eq!(kind(&v.verify::<Value>(&ec).await), "ok");
    let err = v.verify::<Value>(&rs).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_algorithm", "{err}");
    assert!(
        err.to_string()
            .contains("RS256, which is not allowed here (allowed: ES256)"),
        "{err}"
    );
    assert_eq!(
        kind(&v.verify::<Value>(&bare_rs256).await),
        "invalid_algorithm"
    );

    // Declared: RS256 and ES256. The RSA key without `alg` verifies RS256,
    // not the PS256 its type could also do.
    server.set(
        meta,
        Answer::json(metadata(&issuer, &jwks_uri, Some(&["RS256", "ES256"]))),
    );
    let v = verifier(
        &clock,
        CacheOptions::default(),
        vec![Issuer::discover(&issuer)],
    );
    assert_eq!(kind(&v.verify::<Value>(&rs).await), "ok");
    assert_eq!(kind(&v.verify::<Value>(&ec).await), "ok");
    assert_eq!(kind(&v.verify::<Value>(&bare_rs256).await), "ok");
    assert_eq!(
        kind(&v.verify::<Value>(&bare_ps256).await),
        "invalid_algorithm"
    );

    // Nothing declared: the bound key verifies, the bare one is a
    // configuration error that says to name the algorithms.
    server.set(meta, Answer::json(metadata(&issuer, &jwks_uri, None)));
    let v = verifier(
        &clock,
        CacheOptions::default(),
        vec![Issuer::discover(&issuer)],
    );
    assert_eq!(kind(&v.verify::<Value>(&rs).await), "ok");
    let err = v.verify::<Value>(&ec).await.unwrap_err();
    assert!(!err.is_rejection(), "{err}");
    assert!(err.to_string().contains("names no algorithm"), "{err}");
    let named = verifier(
        &clock,
        CacheOptions::default(),
        vec![Issuer::discover(&issuer).algorithms([Algorithm::ES256])],
    );
    assert_eq!(kind(&named.verify::<Value>(&ec).await), "ok");
    assert_eq!(kind(&named.verify::<Value>(&rs).await), "invalid_algorithm");

    // Declared, but no public-key algorithm among them.
    server.set(
        meta,
        Answer::json(metadata(&issuer, &jwks_uri, Some(&["HS256", "none"]))),
    );
    let v = verifier(
        &clock,
        CacheOptions::default(),
        vec![Issuer::discover(&issuer)],
    );
    let err = v.verify::<Value>(&rs).await.unwrap_err();
    match &err {
        Error::InvalidConfig { setting, reason } => {
            assert_eq!(*setting, "algorithms");
            assert!(
                reason.contains("declares no public-key signing algorithm"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// What `discover` reports: the metadata, and each key with its kid, type,
/// JWK `alg`, RFC 7638 thumbprint and the algorithms it verifies with.
#[tokio::test]
async fn discover_reports_the_keys_a_verifier_would_trust() {
    let server = IssuerServer::start().await;
    let a = Key::new(Algorithm::RS256, "a");
    let b = Key::without_jwk_alg(Algorithm::ES256, "b");
    let issuer = format!("{}/d", server.base);
    server.set(
        "/d/.well-known/openid-configuration",
        Answer::json_max_age(
            metadata(
                &issuer,
                &format!("{issuer}/jwks"),
                Some(&["RS256", "ES256"]),
            ),
            900,
        ),
    );
    server.set(
        "/d/jwks",
        Answer::json_max_age(
            format!(
                r#"{{"keys":[{},{},{{"kty":"EC","use":"enc","kid":"e","crv":"P-256","x":"x","y":"y"}}]}}"#,
                serde_json::to_string(&a.jwk()).unwrap(),
                serde_json::to_string(&b.jwk()).unwrap()
            ),
            600,
        ),
    );
    let found = jwt_keys::discover(&issuer, &CacheOptions::default())
        .await
        .unwrap();
    assert_eq!(found.metadata().issuer(), issuer);
    assert_eq!(found.metadata().jwks_uri(), format!("{issuer}/jwks"));
    assert_eq!(found.metadata().kind(), MetadataKind::OpenIdConfiguration);
    assert_eq!(
        found.metadata().signing_algorithms(),
        Some(&[Algorithm::RS256, Algorithm::ES256][..])
    );
    assert_eq!(
        found.metadata().document()["response_types_supported"],
        json!(["code"])
    );
    assert_eq!(found.ttl(), Duration::from_secs(600));
    let keys = found.keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0].kid(), keys[0].key_type(), keys[0].jwk_algorithm()),
        ("a", "RSA", Some(Algorithm::RS256))
    );
    assert_eq!(
        keys[0].thumbprint(),
        a.key.verifying_key().thumbprint().unwrap()
    );
    assert_eq!(keys[0].algorithms(), [Algorithm::RS256]);
    assert_eq!(
        (keys[1].kid(), keys[1].key_type(), keys[1].jwk_algorithm()),
        ("b", "EC P-256", None)
    );
    assert_eq!(keys[1].algorithms(), [Algorithm::ES256]);
    assert_eq!(found.skipped().len(), 1);
    assert_eq!(found.skipped()[0].kid.as_deref(), Some("e"));
}
