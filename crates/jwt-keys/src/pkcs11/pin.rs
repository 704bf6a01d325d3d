//! The token's user PIN: given as a value or read from a file at each
//! login, wiped from memory when dropped, and never shown.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::Error;
use crate::file::{check_protection, Protection};

/// The largest PIN file read: PINs are short (PKCS#11 tokens take up to a
/// few hundred bytes), so anything larger is the wrong file.
pub const MAX_PIN_FILE_BYTES: u64 = 4096;

/// The user PIN of a token (`CKU_USER`), as a value or a file read at each
/// login (so whoever manages the secret can replace the file).
///
/// `Debug` never shows the value: `Pin(<redacted>)` or
/// `Pin::File("/run/secrets/hsm-pin")`. The value is wiped from memory when
/// dropped.
///
/// ```
/// use jwt_keys::pkcs11::Pin;
///
/// assert_eq!(format!("{:?}", Pin::new("123456")), "Pin(<redacted>)");
/// assert_eq!(
///     format!("{:?}", Pin::from_file("/run/secrets/hsm-pin")),
///     "Pin::File(\"/run/secrets/hsm-pin\")"
/// );
/// ```
#[derive(Clone)]
pub struct Pin(Source);

#[derive(Clone)]
enum Source {
    Value(Zeroizing<String>),
    File(PathBuf),
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Value(_) => f.write_str("Pin(<redacted>)"),
            Source::File(path) => write!(f, "Pin::File({:?})", path.display().to_string()),
        }
    }
}

impl PartialEq for Pin {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Source::Value(a), Source::Value(b)) => {
                // Constant time: PINs are compared only in tests, but a
                // secret comparison that leaks its length of agreement is a
                // habit to avoid.
                a.len() == b.len()
                    && a.bytes()
                        .zip(b.bytes())
                        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                        == 0
            }
            (Source::File(a), Source::File(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Pin {}

impl Pin {
    /// The PIN itself. Prefer [`from_file`](Self::from_file) in
    /// production: a value in a URI or the environment is visible in more
    /// places (process listings, shell history, crash reports).
    pub fn new(pin: impl Into<String>) -> Pin {
        Pin(Source::Value(Zeroizing::new(pin.into())))
    }

    /// The PIN in a file, read at each login: a regular file of at most
    /// [`MAX_PIN_FILE_BYTES`], owned by this process's user or root, with no
    /// permission for group or others (`chmod 600`), holding the PIN and
    /// nothing else (surrounding whitespace, such as a final newline, is
    /// ignored).
    pub fn from_file(path: impl Into<PathBuf>) -> Pin {
        Pin(Source::File(path.into()))
    }

    /// Where the PIN comes from, for messages (never the PIN).
    pub(crate) fn describe(&self) -> String {
        match &self.0 {
            Source::Value(_) => "the PIN given as a value (pin-value)".into(),
            Source::File(p) => format!("the PIN in {} (pin-source)", p.display()),
        }
    }

    /// The PIN now: the value, or the file's content. Blocking (reads a file).
    pub(crate) fn read(&self) -> Result<Zeroizing<String>, Error> {
        match &self.0 {
            Source::Value(v) => Ok(v.clone()),
            Source::File(path) => read_pin_file(path),
        }
    }

    #[cfg(test)]
    pub(crate) fn value_for_tests(&self) -> Option<&str> {
        match &self.0 {
            Source::Value(v) => Some(v.as_str()),
            Source::File(_) => None,
        }
    }
}

/// Reads a PIN file the way the Vault store reads a secret id file: only a
/// regular file (a FIFO would block the login, a device such as /dev/zero
/// never end), checked on the file opened, not the path.
fn read_pin_file(path: &Path) -> Result<Zeroizing<String>, Error> {
    let shown = path.display();
    let bad = |reason: String| Error::invalid_config("pin_source", reason);
    let cannot = |e: std::io::Error| {
        bad(format!(
            "cannot read the PIN file {shown} (pin-source): {e}; check the path and that this process may read it"
        ))
    };
    let not_regular = || {
        bad(format!(
            "the PIN file {shown} (pin-source) is not a regular file; point pin-source at the file that holds the token's user PIN"
        ))
    };
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(not_regular());
    }
    // O_NONBLOCK: had the path become a FIFO since the check above, the
    // open would wait for a writer; a regular file reads as usual with it.
    #[cfg(unix)]
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
    }
    .map_err(cannot)?;
    #[cfg(not(unix))]
    let file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    check_protection(path, &meta, Protection::Secret).map_err(|e| {
        bad(match e {
            Error::InsecureOwner { owner, euid, .. } => format!(
                "the PIN file {shown} (pin-source) belongs to uid {owner}, but this process runs as uid {euid}: only files of this user or of root are trusted; `chown` it to uid {euid}, or run as its owner"
            ),
            Error::InsecurePermissions { mode, .. } => format!(
                "the PIN file {shown} (pin-source) has mode {mode:03o}: other users can read the token's PIN; run `chmod 600 {shown}`"
            ),
            other => format!("cannot check who may read the PIN file {shown}: {other}"),
        })
    })?;
    let too_large = || {
        bad(format!(
            "the PIN file {shown} (pin-source) is larger than {MAX_PIN_FILE_BYTES} bytes, far more than a PIN; check that pin-source names the right file"
        ))
    };
    if meta.len() > MAX_PIN_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PIN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_PIN_FILE_BYTES {
        return Err(too_large());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        bad(format!(
            "the PIN file {shown} (pin-source) is not text (UTF-8); it must hold the PIN and nothing else"
        ))
    })?;
    let pin = text.trim();
    if pin.is_empty() {
        return Err(bad(format!(
            "the PIN file {shown} (pin-source) is empty; write the token's user PIN into it"
        )));
    }
    Ok(Zeroizing::new(pin.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn reason(e: Error) -> String {
        match e {
            Error::InvalidConfig { setting, reason } => {
                assert_eq!(setting, "pin_source");
                reason
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pin_files_are_read_like_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("pin");
        std::fs::write(&good, "12 34\n").unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Pin::from_file(&good).read().unwrap().as_str(), "12 34");

        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = reason(Pin::from_file(&good).read().unwrap_err());
        assert!(err.contains("chmod 600") && !err.contains("12 34"), "{err}");

        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            let err = reason(Pin::from_file(path).read().unwrap_err());
            assert!(err.contains("not a regular file"), "{err}");
        }
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(reason(Pin::from_file(&empty).read().unwrap_err()).contains("empty"));
        let large = dir.path().join("large");
        std::fs::write(&large, vec![b'1'; 5000]).unwrap();
        std::fs::set_permissions(&large, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(reason(Pin::from_file(&large).read().unwrap_err()).contains("larger than"));
        let missing = reason(Pin::from_file(dir.path().join("nope")).read().unwrap_err());
        assert!(missing.contains("cannot read"), "{missing}");
    }

    #[test]
    fn a_pin_is_never_shown() {
        let pin = Pin::new("s3cret");
        assert!(!format!("{pin:?}").contains("s3cret"));
        assert!(!pin.describe().contains("s3cret"));
        assert_eq!(pin, Pin::new("s3cret"));
        assert_ne!(pin, Pin::new("s3cres"));
    }
}
