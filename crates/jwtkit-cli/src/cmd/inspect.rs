//! `jwtkit inspect`: decode a token **without verifying anything**.
//!
//! Everything shown came from the token: `write_stdout` escapes control
//! characters, and the text report escapes header values whole.

use jwt_core::{dangerous, Header, DEFAULT_MAX_TOKEN_SIZE};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::CliError;

/// Arguments of `jwtkit inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// Print `{"header":…,"claims":…}` as JSON.
    #[arg(long)]
    json: bool,
    /// The token, or `-` to read it from stdin.
    #[arg(value_name = "TOKEN")]
    token: String,
}

#[derive(Serialize)]
struct Decoded<'a> {
    header: &'a Header,
    claims: &'a Map<String, Value>,
}

/// Runs `jwtkit inspect`.
pub(crate) fn run(args: &InspectArgs) -> Result<(), CliError> {
    let token = super::read_token(&args.token, DEFAULT_MAX_TOKEN_SIZE)?;
    crate::diag(format_args!(
        "warning: nothing was verified — not the signature, not the claims; \
         do not trust this content (use `jwtkit verify` for that)"
    ));
    let decoded = dangerous::insecure_decode(&token).map_err(CliError::from_verification)?;
    let out = if args.json {
        let doc = Decoded {
            header: &decoded.header,
            claims: &decoded.claims,
        };
        crate::to_json_line(&doc)?
    } else {
        // Header values escaped whole: a `kid` must not start a line of its own.
        let header = crate::output::header_for_display(&decoded.header);
        super::render_token(&header, &decoded.claims)
    };
    crate::write_stdout(out.as_bytes())
}
