//! The store's objects on the token, and its state read at one moment.
//!
//! Every object of a store carries the store's name as its `CKA_LABEL` (the
//! URI's `object=`) and is `CKA_TOKEN` and `CKA_PRIVATE` (only the logged-in
//! user sees or changes it):
//!
//! | object | class | tells it apart | holds |
//! |---|---|---|---|
//! | a key's private half | `CKO_PRIVATE_KEY` | `CKA_ID` = the kid's bytes | the signing key (sensitive, not extractable) |
//! | a key's public half | `CKO_PUBLIC_KEY` | `CKA_ID` = the kid's bytes | the verification key, read once and cached |
//! | the ledger | `CKO_DATA` | `CKA_APPLICATION` = `jwtkit ledger` | `{"format", "generation", "ledger"}` as JSON in `CKA_VALUE` |
//! | the write lock | `CKO_DATA` | `CKA_APPLICATION` = `jwtkit lock` | its holder (see `lock.rs`) |
//! | an `init` in progress | `CKO_DATA` | `CKA_APPLICATION` = `jwtkit init` | — |
//!
//! # Write-then-swap
//!
//! PKCS#11 cannot change an object's value atomically across processes, so
//! the ledger is never changed in place: a write creates a new ledger
//! object with the next generation, then destroys the older ones. A crash
//! in between leaves both, and readers take the highest generation whose
//! value parses and passes the ledger's checks; a crash during the create
//! leaves the old one, the only valid one. Either way the ledger read is the
//! old or the new one, never a mix.

use std::collections::HashMap;

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use jwt_core::{Algorithm, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::mechanism;
use super::token::{ck, Ctx, OpError};
use crate::error::Error;
use crate::lifecycle::Ledger;
use crate::remote_store::RemoteSnapshot;
use crate::store::KeyState;

/// `CKA_APPLICATION` of the ledger objects.
pub(crate) const APP_LEDGER: &[u8] = b"jwtkit ledger";
/// `CKA_APPLICATION` of the lock objects.
pub(crate) const APP_LOCK: &[u8] = b"jwtkit lock";
/// `CKA_APPLICATION` of the marker an `init` writes before it creates keys.
pub(crate) const APP_INIT: &[u8] = b"jwtkit init";

/// The `format` of the ledger objects' JSON.
const LEDGER_FORMAT: &str = "jwtkit-pkcs11-ledger/1";

/// The JSON in a ledger object's `CKA_VALUE`.
#[derive(Serialize, Deserialize)]
struct LedgerValue {
    format: String,
    generation: u64,
    ledger: Ledger,
}

/// The state read at one moment.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) ledger: Option<Ledger>,
    /// The generation of `ledger` (0: none yet).
    pub(crate) generation: u64,
    /// An `init` began and did not finish.
    pub(crate) init_started: bool,
    /// No ledger was found, yet the token holds key objects of the store:
    /// the ledger may be hidden (see `Pkcs11KeyStore::load`).
    pub(crate) keys_without_ledger: bool,
    /// The public keys of the ledger's unretired keys, by kid.
    pub(crate) public: HashMap<String, VerifyingKey>,
}

impl RemoteSnapshot for Snapshot {
    fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    fn public_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.public.get(kid)
    }
}

/// A kid's `CKA_ID`: its base64url decoded (kids are 16 random bytes).
pub(crate) fn key_id(kid: &str) -> Option<Vec<u8>> {
    jwt_core::b64::decode(kid.as_bytes(), "kid").ok()
}

/// The kid of a `CKA_ID`.
pub(crate) fn kid_of(id: &[u8]) -> String {
    jwt_core::b64::encode(id)
}

/// The data objects of `label` with `application`.
pub(crate) fn data_objects(
    c: &Ctx<'_>,
    label: &str,
    application: &[u8],
) -> Result<Vec<ObjectHandle>, OpError> {
    ck(
        "C_FindObjects",
        c.find(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(application.to_vec()),
        ]),
    )
}

/// The `CKA_VALUE` of a data object; `None` when the object is gone.
pub(crate) fn value(c: &Ctx<'_>, object: ObjectHandle) -> Result<Option<Vec<u8>>, OpError> {
    match c.attributes(object, &[AttributeType::Value]) {
        Ok(attrs) => Ok(attrs.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })),
        // Destroyed by another process since it was found.
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::ObjectHandleInvalid, _)) => {
            Ok(None)
        }
        Err(e) => Err(OpError::Call("C_GetAttributeValue", e)),
    }
}

/// Creates a data object of `label` with `application` holding `value`.
pub(crate) fn create_data(
    c: &Ctx<'_>,
    label: &str,
    application: &[u8],
    value: &[u8],
) -> Result<ObjectHandle, OpError> {
    ck(
        "C_CreateObject",
        c.create(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(application.to_vec()),
            Attribute::Value(value.to_vec()),
        ]),
    )
}

/// Destroys `object`; one already gone is fine.
pub(crate) fn destroy(c: &Ctx<'_>, object: ObjectHandle) -> Result<(), OpError> {
    match c.destroy(object) {
        Ok(()) => Ok(()),
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::ObjectHandleInvalid, _)) => {
            Ok(())
        }
        Err(e) => Err(OpError::Call("C_DestroyObject", e)),
    }
}

/// One ledger object as read.
pub(crate) struct LedgerObject {
    pub(crate) handle: ObjectHandle,
    /// The generation and ledger; `Err` (why) for a damaged object.
    pub(crate) content: Result<(u64, Ledger), String>,
}

/// Every ledger object of `label`.
pub(crate) fn ledger_objects(c: &Ctx<'_>, label: &str) -> Result<Vec<LedgerObject>, OpError> {
    let mut out = Vec::new();
    for handle in data_objects(c, label, APP_LEDGER)? {
        let Some(bytes) = value(c, handle)? else {
            continue;
        };
        let content = serde_json::from_slice::<LedgerValue>(&bytes)
            .map_err(|e| format!("its value is not a ledger: {e}"))
            .and_then(|v| {
                if v.format != LEDGER_FORMAT {
                    return Err(format!(
                        "its format is `{}`; this build reads `{LEDGER_FORMAT}`",
                        v.format
                    ));
                }
                v.ledger.check()?;
                Ok((v.generation, v.ledger))
            });
        out.push(LedgerObject { handle, content });
    }
    Ok(out)
}

/// The current ledger among `objects`: the highest generation that is
/// valid. Its generation is 0 when there is none.
pub(crate) fn current(objects: &[LedgerObject]) -> (Option<Ledger>, u64) {
    objects
        .iter()
        .filter_map(|o| o.content.as_ref().ok())
        .max_by_key(|(generation, _)| *generation)
        .map_or((None, 0), |(g, l)| (Some(l.clone()), *g))
}

/// Writes `ledger` as generation `generation`.
pub(crate) fn write_ledger(
    c: &Ctx<'_>,
    label: &str,
    generation: u64,
    ledger: &Ledger,
) -> Result<ObjectHandle, OpError> {
    let value = serde_json::to_vec(&LedgerValue {
        format: LEDGER_FORMAT.into(),
        generation,
        ledger: ledger.clone(),
    })
    .map_err(|e| {
        OpError::Store(Error::corrupt_state(format!(
            "the ledger cannot be encoded: {e}"
        )))
    })?;
    create_data(c, label, APP_LEDGER, &value)
}

/// The key objects (both halves) of `label`: `(handle, class, CKA_ID)`.
pub(crate) fn key_objects(
    c: &Ctx<'_>,
    label: &str,
) -> Result<Vec<(ObjectHandle, ObjectClass, Vec<u8>)>, OpError> {
    let mut out = Vec::new();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
        let found = ck(
            "C_FindObjects",
            c.find(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ]),
        )?;
        for handle in found {
            let id = match c.attributes(handle, &[AttributeType::Id]) {
                Ok(attrs) => attrs.into_iter().find_map(|a| match a {
                    Attribute::Id(v) => Some(v),
                    _ => None,
                }),
                Err(cryptoki::error::Error::Pkcs11(
                    cryptoki::error::RvError::ObjectHandleInvalid,
                    _,
                )) => continue,
                Err(e) => return Err(OpError::Call("C_GetAttributeValue", e)),
            };
            out.push((handle, class, id.unwrap_or_default()));
        }
    }
    Ok(out)
}

/// Reads the public key of `kid` from its public key object; `None` when
/// the object is not there.
pub(crate) fn read_public(
    c: &Ctx<'_>,
    label: &str,
    kid: &str,
    alg: Algorithm,
) -> Result<Option<VerifyingKey>, OpError> {
    let id = key_id(kid).ok_or_else(|| {
        OpError::Store(Error::corrupt_state(format!(
            "the ledger names kid `{kid}`, which is not a PKCS#11 store's kid (base64url of its CKA_ID)"
        )))
    })?;
    let found = ck(
        "C_FindObjects",
        c.find(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id),
        ]),
    )?;
    let Some(handle) = found.first() else {
        c.check_present()?;
        return Ok(None);
    };
    let attrs = match c.attributes(*handle, &mechanism::public_attributes(alg)) {
        Ok(attrs) => attrs,
        // Destroyed since it was found (a retirement by another process).
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::ObjectHandleInvalid, _)) => {
            return Ok(None)
        }
        Err(e) => return Err(OpError::Call("C_GetAttributeValue", e)),
    };
    mechanism::parse_public(alg, kid, &attrs)
        .map(Some)
        .map_err(|reason| {
            OpError::Store(Error::corrupt_state(format!(
                "the public key object of kid `{kid}` (label `{label}`) on {} does not hold a {alg} key: {reason}",
                c.describe()
            )))
        })
}

/// Reads the state: the current ledger and the public keys of its
/// unretired keys (from `cache`, read from the token when missing).
pub(crate) fn read_snapshot(
    c: &Ctx<'_>,
    label: &str,
    cache: &std::sync::RwLock<HashMap<String, VerifyingKey>>,
) -> Result<Snapshot, OpError> {
    // An empty search on a token that went away reads as "no ledger".
    c.check_present()?;
    let objects = ledger_objects(c, label)?;
    let (ledger, generation) = current(&objects);
    if ledger.is_none() {
        if let Some(damaged) = objects.iter().find_map(|o| o.content.as_ref().err()) {
            return Err(OpError::Store(Error::corrupt_state(format!(
                "the ledger object of `{label}` on {} is damaged ({damaged}) and no other is valid; nothing was changed. Restore the token from a backup, or remove the store's objects (label `{label}`) to start over",
                c.describe()
            ))));
        }
    }
    let init_started = !data_objects(c, label, APP_INIT)?.is_empty();
    let mut public = HashMap::new();
    if let Some(l) = &ledger {
        for r in l.keys.iter().filter(|r| r.state != KeyState::Retired) {
            let cached = cache
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&r.kid)
                .cloned();
            let key = match cached {
                Some(k) => Some(k),
                None => read_public(c, label, &r.kid, r.alg)?,
            };
            match key {
                Some(k) => {
                    cache
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(r.kid.clone(), k.clone());
                    public.insert(r.kid.clone(), k);
                }
                // A retiring key past its grace whose objects a retirement
                // destroyed before it could record it: not published anyway.
                None if r.state == KeyState::Retiring => {
                    tracing::warn!(kid = %r.kid, token = %c.describe(), "the public key of a retiring key is not on the token; it no longer verifies");
                }
                None => {
                    return Err(OpError::Store(Error::corrupt_state(format!(
                        "the {} key `{}` of `{label}` has no public key object on {}; someone removed it. Restore the token from a backup, or rotate twice to replace the key",
                        r.state, r.kid, c.describe()
                    ))))
                }
            }
        }
    }
    let keys_without_ledger = ledger.is_none() && !key_objects(c, label)?.is_empty();
    Ok(Snapshot {
        ledger,
        generation,
        init_started,
        keys_without_ledger,
        public,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_and_ids_round_trip() {
        let id = [
            0xfbu8, 0xff, 0x00, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        let kid = kid_of(&id);
        assert!(crate::lifecycle::kid_is_safe(&kid), "{kid}");
        assert_eq!(key_id(&kid).as_deref(), Some(&id[..]));
        assert_eq!(key_id("not base64url!"), None);
    }
}
