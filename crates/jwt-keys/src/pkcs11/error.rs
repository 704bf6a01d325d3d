//! PKCS#11 failures as [`Error::Backend`] with a [`Pkcs11Error`] source that
//! names the call, the token and the return value, says what to check, and
//! whether retrying may help (and whether the store must reconnect first).

use std::fmt;

use cryptoki::error::{Error as CkError, RvError};

use crate::error::Error;

/// The backend name in [`Error::Backend`].
pub(crate) const BACKEND: &str = "pkcs11";

/// A failed PKCS#11 call: the `source` of the [`Error::Backend`] errors of
/// [`Pkcs11KeyStore`](super::Pkcs11KeyStore). Downcast to it for the return
/// value (`CKR_…`); its message names the call, the token and what to check.
/// It never holds the PIN.
#[derive(Debug)]
pub struct Pkcs11Error {
    operation: String,
    target: String,
    rv: Option<String>,
    detail: Option<String>,
    hint: String,
    source: Option<CkError>,
}

impl Pkcs11Error {
    /// What was attempted: a PKCS#11 function (`C_Sign`, `C_Login`, …) or a
    /// step of the store (`load the module`, `read the ledger`).
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The module's return value, e.g. `CKR_DEVICE_REMOVED`, when the
    /// failure is one.
    pub fn return_value(&self) -> Option<&str> {
        self.rv.as_deref()
    }

    /// A failure the store found on its side of a call (an answer it
    /// cannot use, a token it cannot find).
    pub(crate) fn invalid(
        operation: impl Into<String>,
        target: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Pkcs11Error {
            operation: operation.into(),
            target: target.into(),
            rv: None,
            detail: Some(detail.into()),
            hint: hint.into(),
            source: None,
        }
    }

    /// A failed call of the module.
    pub(crate) fn call(operation: &str, target: impl Into<String>, source: CkError) -> Self {
        let rv = return_value(&source);
        let function = match &source {
            CkError::Pkcs11(_, f) => format!("C_{f:?}"),
            _ => operation.to_owned(),
        };
        let operation = if function == operation {
            function
        } else {
            format!("{operation} ({function})")
        };
        Pkcs11Error {
            hint: hint(&source).to_owned(),
            operation,
            target: target.into(),
            rv,
            detail: None,
            source: Some(source),
        }
    }

    /// Adds what the store knows about the failure.
    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The failure as the store's error.
    pub(crate) fn into_error(self) -> Error {
        let retryable = self.source.as_ref().is_some_and(is_retryable);
        self.into_error_retryable(retryable)
    }

    /// The failure as the store's error, retryable as the caller knows.
    pub(crate) fn into_error_retryable(self, retryable: bool) -> Error {
        Error::Backend {
            backend: BACKEND,
            source: Box::new(self),
            retryable,
        }
    }
}

impl fmt::Display for Pkcs11Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PKCS#11 {} on {} failed", self.operation, self.target)?;
        if let Some(rv) = &self.rv {
            write!(f, " ({rv})")?;
        } else if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if !self.hint.is_empty() {
            write!(f, "; {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for Pkcs11Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `CKR_DEVICE_REMOVED` for [`RvError::DeviceRemoved`]: the name the
/// PKCS#11 specification and every HSM's manual use.
fn return_value(e: &CkError) -> Option<String> {
    let CkError::Pkcs11(rv, _) = e else {
        return None;
    };
    let debug = format!("{rv:?}");
    if debug.contains('(') {
        // Vendor-defined and unknown codes print their number.
        return Some(rv.to_string());
    }
    let mut name = String::from("CKR");
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    Some(name)
}

/// The return value, when the error is one.
pub(crate) fn rv_of(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Failures that come from the token, the slot or the module rather than
/// from the request: the store drops its sessions, finds the token again
/// (re-initializing the module if it lost the token) and logs in again.
pub(crate) fn needs_reconnect(e: &CkError) -> bool {
    use RvError as R;
    matches!(
        rv_of(e),
        Some(
            R::SessionHandleInvalid
                | R::SessionClosed
                | R::DeviceRemoved
                | R::DeviceError
                | R::TokenNotPresent
                | R::TokenNotRecognized
                | R::CryptokiNotInitialized
                | R::UserNotLoggedIn
                | R::SlotIdInvalid
                | R::GeneralError
                | R::ObjectHandleInvalid
                | R::KeyHandleInvalid
        )
    )
}

/// Whether the same call may succeed later: the token is back, the
/// module recovered, a session or memory is free again. A refused PIN
/// never is: retrying it would lock the token.
pub(crate) fn is_retryable(e: &CkError) -> bool {
    use RvError as R;
    needs_reconnect(e)
        || matches!(
            rv_of(e),
            Some(
                R::DeviceMemory
                    | R::HostMemory
                    | R::SessionCount
                    | R::FunctionFailed
                    | R::FunctionCanceled
                    | R::CantLock
                    | R::OperationActive
            )
        )
}

/// What to check for a return value.
fn hint(e: &CkError) -> &'static str {
    use RvError as R;
    let Some(rv) = rv_of(e) else {
        return match e {
            CkError::LibraryLoading(_) => {
                "check module-path: it must name the PKCS#11 module (a shared library) of your HSM's client, e.g. /usr/lib/softhsm/libsofthsm2.so"
            }
            _ => "the PKCS#11 binding refused a value; this is a bug if it persists",
        };
    };
    match rv {
        R::PinIncorrect | R::PinInvalid | R::PinLenRange => {
            "the token refused the PIN (it is not sent again: repeated wrong PINs lock the token); check the PIN (the pin-source file, or pin-value), and the token's remaining tries with its tools (softhsm2-util --show-slots, pkcs11-tool -T)"
        }
        R::PinLocked => {
            "the user PIN is locked after too many wrong tries; the token's security officer must unlock it (pkcs11-tool --init-pin --login --login-type so)"
        }
        R::PinExpired => "the user PIN has expired; set a new one with the token's tools",
        R::UserPinNotInitialized => {
            "the token's user PIN is not set; initialize it (softhsm2-util --init-token … --pin, pkcs11-tool --init-pin)"
        }
        R::DeviceRemoved | R::TokenNotPresent | R::TokenNotRecognized => {
            "the token is not reachable (removed, or the HSM is down); the store reconnects when it is back"
        }
        R::DeviceError | R::GeneralError | R::FunctionFailed => {
            "the module or the HSM failed; the store reconnects at the next call — check the HSM client's logs if it persists"
        }
        R::CryptokiNotInitialized => {
            "the module was finalized under the store; it is initialized again at the next call"
        }
        R::SessionHandleInvalid | R::SessionClosed | R::UserNotLoggedIn => {
            "the session was lost (the token was reset or the module restarted); the store opens new sessions at the next call"
        }
        R::SessionCount => {
            "the token has no free session; lower max_sessions of this store or of other applications on the token"
        }
        R::DeviceMemory | R::HostMemory => "the HSM or this host is out of memory; retry later",
        R::MechanismInvalid | R::MechanismParamInvalid => {
            "the token does not do this mechanism with this key; choose another algorithm"
        }
        R::TokenWriteProtected | R::SessionReadOnly => {
            "the token is write-protected; rotation needs a token the user may write"
        }
        R::AttributeValueInvalid | R::TemplateInconsistent | R::TemplateIncomplete | R::AttributeTypeInvalid | R::CurveNotSupported | R::KeySizeRange | R::DomainParamsInvalid => {
            "the token refused the key template; it may not support this key type or size (see docs/backends/pkcs11.md for your HSM)"
        }
        R::ObjectHandleInvalid | R::KeyHandleInvalid => {
            "the object is gone (the token was reset or another process removed it); the store finds it again at the next call"
        }
        R::ActionProhibited | R::KeyFunctionNotPermitted => {
            "the token's policy forbids this operation for this user or key; see the least-privilege policy in docs/backends/pkcs11.md"
        }
        _ => "see the PKCS#11 return value above and your HSM's documentation",
    }
}

#[cfg(test)]
mod tests {
    use cryptoki::context::Function;

    use super::*;

    #[test]
    fn return_values_are_named_as_the_specification_does() {
        let e = CkError::Pkcs11(RvError::CryptokiNotInitialized, Function::Sign);
        assert_eq!(
            return_value(&e).as_deref(),
            Some("CKR_CRYPTOKI_NOT_INITIALIZED")
        );
        let e = CkError::Pkcs11(RvError::PinIncorrect, Function::Login);
        let err = Pkcs11Error::call("C_Login", "token `t`", e);
        assert_eq!(err.return_value(), Some("CKR_PIN_INCORRECT"));
        assert_eq!(err.operation(), "C_Login");
        let text = err.to_string();
        assert!(text.contains("not sent again"), "{text}");
        let err = err.into_error();
        assert!(!err.is_retryable(), "a wrong PIN is never retried");

        let e = CkError::Pkcs11(RvError::DeviceRemoved, Function::SignInit);
        assert!(needs_reconnect(&e) && is_retryable(&e));
        let err = Pkcs11Error::call("sign", "token `t`", e);
        assert_eq!(err.operation(), "sign (C_SignInit)");
        assert!(err.into_error().is_retryable());
    }
}
