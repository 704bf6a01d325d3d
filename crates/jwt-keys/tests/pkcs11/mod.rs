//! Helpers for the PKCS#11 tests: a SoftHSM2 token of the test binary's own,
//! stores on it, and direct access to the token through `cryptoki` (to look
//! at what the store left there, as an HSM administrator would).
//!
//! SoftHSM2 (`scripts/services.sh` prepares it: `JWTKIT_TEST_PKCS11_MODULE`,
//! `JWTKIT_TEST_SOFTHSM_UTIL`, `SOFTHSM2_CONF` with a token directory under
//! `.services/softhsm`) is a real PKCS#11 module. It finds the tokens of
//! its directory when it is initialized, once per process, so each test
//! binary creates its tokens before any store loads the module: one its
//! tests share, telling their stores apart by name (`object=`), and one for
//! each test that writes objects beside its stores ([`own_token`]). Without SoftHSM the
//! tests say how to run them and pass, unless `JWTKIT_REQUIRE_SERVICES=1`.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use jwt_core::Clock;
use jwt_keys::pkcs11::{Pin, Pkcs11KeyStore, Pkcs11KeyStoreBuilder};

/// The user PIN of the test tokens.
pub const PIN: &str = "4711-jwtkit";
const SO_PIN: &str = "0815-jwtkit-so";

/// SoftHSM2 as `scripts/services.sh` prepared it.
#[derive(Debug, Clone)]
pub struct SoftHsm {
    pub module: PathBuf,
    pub util: PathBuf,
    /// The token directory of `SOFTHSM2_CONF`.
    pub token_dir: PathBuf,
}

/// SoftHSM2, or `None` after printing how to run the tests (a failure when
/// services are required).
pub fn softhsm() -> Option<SoftHsm> {
    let module = jwtkit_test_support::service(
        "JWTKIT_TEST_PKCS11_MODULE",
        "SoftHSM2 (the PKCS#11 module libsofthsm2.so)",
    )?;
    let util = jwtkit_test_support::service("JWTKIT_TEST_SOFTHSM_UTIL", "softhsm2-util")?;
    let conf = jwtkit_test_support::service(
        "SOFTHSM2_CONF",
        "SoftHSM2's configuration for the tests (its token directory under .services/softhsm)",
    )?;
    let text = std::fs::read_to_string(&conf)
        .unwrap_or_else(|e| panic!("SOFTHSM2_CONF={conf} cannot be read: {e}"));
    let token_dir = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "directories.tokendir").then(|| PathBuf::from(v.trim()))
        })
        .unwrap_or_else(|| panic!("SOFTHSM2_CONF={conf} names no directories.tokendir"));
    Some(SoftHsm {
        module: module.into(),
        util: util.into(),
        token_dir,
    })
}

/// A token label no other test binary or earlier run uses (at most 32
/// bytes, PKCS#11's limit).
pub fn unique_label(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut label = format!(
        "{prefix}{:x}{:x}{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    );
    label.truncate(32);
    label
}

/// A store name (`object=`) no other test of the binary uses.
pub fn unique_object(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A SoftHSM2 token and a file with its user PIN (mode 0600).
#[derive(Debug)]
pub struct TestToken {
    pub hsm: SoftHsm,
    pub label: String,
    pub pin_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestToken {
    /// Initializes a new token in SoftHSM's first free slot.
    pub fn create(hsm: &SoftHsm, prefix: &str) -> TestToken {
        TestToken::create_labelled(hsm, unique_label(prefix))
    }

    /// Initializes a new token labelled `label`.
    pub fn create_labelled(hsm: &SoftHsm, label: String) -> TestToken {
        if let Err(out) = jwtkit_test_support::softhsm_init_token(&hsm.util, &label, PIN, SO_PIN) {
            panic!(
                "softhsm2-util --init-token: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let pin_file = dir.path().join("hsm-pin");
        write_secret(&pin_file, &format!("{PIN}\n"));
        TestToken {
            hsm: hsm.clone(),
            label,
            pin_file,
            _dir: dir,
        }
    }

    /// The store URI for `object`, the PIN from the file.
    pub fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={}&pin-source=file:{}",
            self.label,
            self.hsm.module.display(),
            self.pin_file.display()
        )
    }

    /// A builder for the store `object` on this token.
    pub fn builder(&self, object: &str) -> Pkcs11KeyStoreBuilder {
        Pkcs11KeyStore::builder(&self.hsm.module, &self.label, object)
            .pin(Pin::from_file(&self.pin_file))
            .timeout(Duration::from_secs(30))
    }

    /// The store `object` on this token, on `clock`.
    pub fn store(&self, object: &str, clock: Arc<dyn Clock>) -> Pkcs11KeyStore {
        self.builder(object)
            .clock(clock)
            .build()
            .expect("build the store")
    }

    /// The token's directory under SoftHSM's token directory (found by its
    /// label in `token.object`).
    pub fn directory(&self) -> PathBuf {
        for entry in std::fs::read_dir(&self.hsm.token_dir).unwrap() {
            let path = entry.unwrap().path();
            let Ok(bytes) = std::fs::read(path.join("token.object")) else {
                continue;
            };
            // C_InitToken's label: 32 bytes, padded with spaces (so that
            // `…-pkcs11` does not match the token `…-pkcs11-1`).
            let padded = format!("{:<32}", self.label);
            if bytes.windows(32).any(|w| w == padded.as_bytes()) {
                return path;
            }
        }
        panic!(
            "no directory of token {} in {}",
            self.label,
            self.hsm.token_dir.display()
        );
    }

    /// A session of this process on the token, logged in as the user, on
    /// the process's module (initialized by a store already, or now).
    pub fn admin(&self) -> Admin {
        let ctx = Pkcs11::new(&self.hsm.module).expect("load the module");
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        let slot = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|t| t.label() == self.label)
            })
            .unwrap_or_else(|| panic!("token {} not found", self.label));
        let session = ctx.open_rw_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::new(PIN.into()))) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => panic!("C_Login: {e}"),
        }
        Admin { ctx, session }
    }
}

/// Tests that write objects through a session of their own (as an HSM
/// administrator or another client would) each get a token of their own,
/// by one of these names. SoftHSM2's file store races when two sessions of
/// one process write objects of the same token at once: a `C_CreateObject`
/// that overlaps another session's re-index of the token can fail with
/// `CKR_TEMPLATE_INCONSISTENT` (CI saw it in
/// `a_key_imported_by_another_client_never_signs` while other tests
/// rotated their stores on the shared token).
pub const OWN_TOKENS: [&str; 3] = ["ledger", "lock", "imported"];

/// The test binary's tokens: the shared one and one per name of
/// [`OWN_TOKENS`], all created once, before any store loads the module
/// (SoftHSM finds tokens only when it is initialized). Their labels start
/// with the binary's name (`jwtkit-test-pkcs11`, …): the tokens of an
/// earlier run are deleted first, so that runs do not pile tokens up (no
/// test hook runs when a test binary exits).
fn tokens() -> Option<&'static [TestToken]> {
    static TOKENS: OnceLock<Option<Vec<TestToken>>> = OnceLock::new();
    TOKENS
        .get_or_init(|| {
            let hsm = softhsm()?;
            let exe = std::env::current_exe().expect("the test binary's path");
            let stem = exe.file_stem().unwrap().to_string_lossy();
            // `pkcs11_recovery-0123abcd…`: cargo's hash after the last `-`.
            let name = stem.rsplit_once('-').map_or(&*stem, |(n, _)| n);
            let mut base = format!("jwtkit-test-{name}");
            base.truncate(29);
            let labels = std::iter::once(base.clone())
                .chain((1..=OWN_TOKENS.len()).map(|i| format!("{base}-{i}")));
            Some(
                labels
                    .map(|label| {
                        let _ = Command::new(&hsm.util)
                            .args(["--delete-token", "--token", &label])
                            .output();
                        TestToken::create_labelled(&hsm, label)
                    })
                    .collect(),
            )
        })
        .as_deref()
}

/// The token the binary's tests share (each test tells its stores apart
/// by name, `object=`).
pub fn shared_token() -> Option<&'static TestToken> {
    tokens().map(|t| &t[0])
}

/// The token of the one test that writes objects beside its stores under
/// `name` (one of [`OWN_TOKENS`]).
pub fn own_token(name: &str) -> Option<&'static TestToken> {
    let i = OWN_TOKENS
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("{name:?} is not in OWN_TOKENS"));
    tokens().map(|t| &t[i + 1])
}

/// Writes a file readable by its owner only.
pub fn write_secret(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A logged-in session of the test itself: what an HSM administrator sees.
pub struct Admin {
    pub ctx: Pkcs11,
    pub session: Session,
}

impl Admin {
    /// The objects of class `class` labelled `label` (with `id`, if given).
    pub fn find(&self, class: ObjectClass, label: &str, id: Option<&[u8]>) -> Vec<ObjectHandle> {
        let mut template = vec![
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        if let Some(id) = id {
            template.push(Attribute::Id(id.to_vec()));
        }
        self.session.find_objects(&template).unwrap()
    }

    /// The data objects of store `label` with `application`.
    pub fn data(&self, label: &str, application: &[u8]) -> Vec<ObjectHandle> {
        self.session
            .find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Application(application.to_vec()),
            ])
            .unwrap()
    }

    /// Creates a data object of store `label` (a ledger or lock object, as
    /// a crashed writer would leave it).
    pub fn create_data(&self, label: &str, application: &[u8], value: &[u8]) -> ObjectHandle {
        self.session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Application(application.to_vec()),
                Attribute::Value(value.to_vec()),
            ])
            .unwrap()
    }

    /// The `CKA_VALUE` of a data object.
    pub fn value(&self, object: ObjectHandle) -> Vec<u8> {
        self.session
            .get_attributes(object, &[cryptoki::object::AttributeType::Value])
            .unwrap()
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            })
            .expect("CKA_VALUE")
    }
}

/// A kid's `CKA_ID` (base64url of it).
pub fn key_id(kid: &str) -> Vec<u8> {
    jwt_core::b64::decode(kid.as_bytes(), "kid").expect("a kid is base64url")
}

/// Verifies `tokens` (`(alg, token)` pairs) with PyJWT against `jwks`, as a
/// Python relying party would; returns each token's `sub`. `None` when no
/// Python with PyJWT is available (a failure when services are required).
pub fn verify_with_pyjwt(jwks: &str, tokens: &[(String, String)]) -> Option<Vec<String>> {
    let python = jwtkit_test_support::python_with_pyjwt()?;
    let script = r#"
import json, sys
import jwt
jwks = json.loads(sys.argv[1])
keys = {k["kid"]: jwt.PyJWK(k) for k in jwks["keys"]}
for pair in json.loads(sys.argv[2]):
    alg, token = pair
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, keys[kid].key, algorithms=[alg], options={"verify_aud": False})
    print(claims["sub"])
"#;
    let pairs = serde_json::to_string(tokens).unwrap();
    let out = Command::new(python)
        .args(["-c", script, jwks, &pairs])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "PyJWT refused a token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}
