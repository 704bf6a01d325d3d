//! KMS failures as [`Error::Backend`] with a [`KmsError`] source that says
//! what to check, and whether retrying may help.

use std::fmt;

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::{BoxError, Error};

/// The backend name in [`Error::Backend`].
pub(crate) const BACKEND: &str = "aws-kms";

/// A failed KMS call: the `source` of the [`Error::Backend`] errors of
/// [`KmsKeyStore`](super::KmsKeyStore). Downcast to it for the KMS error
/// code; its message names the operation, the key and what to check.
#[derive(Debug)]
pub struct KmsError {
    operation: &'static str,
    key: String,
    code: Option<String>,
    hint: &'static str,
    source: Option<BoxError>,
    detail: Option<String>,
}

impl KmsError {
    /// The KMS operation, e.g. `"Sign"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The KMS error code (`ThrottlingException`, `NotFoundException`, …),
    /// when KMS answered with one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// An error found on our side of a call (an unusable answer).
    pub(crate) fn invalid(operation: &'static str, key: &str, detail: String) -> Self {
        KmsError {
            operation,
            key: key.to_owned(),
            code: None,
            hint: "KMS answered with something this library cannot use; check that the endpoint is AWS KMS (or a faithful emulator)",
            source: None,
            detail: Some(detail),
        }
    }
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KMS {} on {} failed", self.operation, self.key)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        write!(f, "; {}", self.hint)
    }
}

impl std::error::Error for KmsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Service error codes that are worth retrying.
const RETRYABLE_CODES: [&str; 5] = [
    "ThrottlingException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    "ServiceUnavailableException",
];

/// Maps an SDK error; `key` is the key id, ARN or alias the call named.
pub(crate) fn sdk<E, R>(operation: &'static str, key: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let detail = Some(DisplayErrorContext(&err).to_string());
    let (code, hint, retryable): (Option<String>, &'static str, bool) = match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().map(str::to_owned);
            let (hint, retryable) = match code.as_deref() {
                Some("ThrottlingException") => (
                    "KMS throttled the request after the SDK's retries; the account's per-second quota for cryptographic operations is shared by every caller in the region (see docs/backends/kms.md), so slow down or ask AWS for a higher quota",
                    true,
                ),
                Some("NotFoundException") => (
                    "the key or alias does not exist in this account and region; check the key id, AWS_REGION and the endpoint (AWS_ENDPOINT_URL_KMS)",
                    false,
                ),
                Some("AccessDeniedException") => (
                    "the credentials are not allowed to do this; check the IAM/key policy (docs/backends/kms.md lists what the store needs)",
                    false,
                ),
                Some("KMSInvalidStateException") | Some("DisabledException") => (
                    "the key is disabled or pending deletion; a retired key cannot sign",
                    false,
                ),
                Some("UnrecognizedClientException") | Some("InvalidSignatureException") => (
                    "the credentials are invalid; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile (AWS_PROFILE)",
                    false,
                ),
                Some(c) if RETRYABLE_CODES.contains(&c) => (
                    "KMS reported a transient failure; retry later",
                    true,
                ),
                _ => ("see the KMS error code and message", false),
            };
            (code, hint, retryable)
        }
        SdkError::TimeoutError(_) => (
            None,
            "the call did not complete within the configured timeout; check that the KMS endpoint is reachable",
            true,
        ),
        SdkError::DispatchFailure(d) => {
            if d.is_io() || d.is_timeout() {
                (
                    None,
                    "could not reach KMS; check the endpoint (AWS_ENDPOINT_URL_KMS/AWS_ENDPOINT_URL), the region and the network",
                    true,
                )
            } else {
                (
                    None,
                    "the request could not be sent; check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the region",
                    false,
                )
            }
        }
        SdkError::ResponseError(_) => (
            None,
            "KMS's answer could not be read; retry, and check that the endpoint is KMS",
            true,
        ),
        _ => (
            None,
            "the request could not be built; check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and AWS_REGION",
            false,
        ),
    };
    Error::Backend {
        backend: BACKEND,
        source: Box::new(KmsError {
            operation,
            key: key.to_owned(),
            code,
            hint,
            source: Some(Box::new(err)),
            detail,
        }),
        retryable,
    }
}

/// An [`Error::Backend`] for an answer we cannot use (never retryable).
pub(crate) fn invalid(operation: &'static str, key: &str, detail: impl Into<String>) -> Error {
    Error::Backend {
        backend: BACKEND,
        source: Box::new(KmsError::invalid(operation, key, detail.into())),
        retryable: false,
    }
}
