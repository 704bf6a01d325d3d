//! `jwtkit speed`: sign and verify operations per second for each algorithm,
//! through jwt-core's public path, next to the bare primitive with a
//! pre-parsed key (the floor), in one run on this machine — like `openssl speed`.

use std::time::{Duration, Instant};

use jwt_core::speed::{sample_validation, Floor, SampleClaims};
use jwt_core::{Algorithm, Signer, SigningKey, Verifier};
use serde::Serialize;

use crate::error::CliError;

/// Arguments of `jwtkit speed`.
#[derive(Debug, clap::Args)]
pub(crate) struct SpeedArgs {
    /// Algorithm to measure; repeat for several (default: all 13).
    #[arg(long, value_name = "ALG")]
    alg: Vec<String>,
    /// Seconds to spend on each measurement (each op, jwtkit and primitive together).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    seconds: f64,
    /// Print `{"results":[{"alg","op","ns_per_op","primitive_ns_per_op"},…]}`.
    #[arg(long)]
    json: bool,
}

type Claims = SampleClaims;

fn claims() -> Claims {
    SampleClaims::default()
}

#[derive(Serialize)]
struct Row {
    alg: &'static str,
    op: &'static str,
    ns_per_op: f64,
    primitive_ns_per_op: f64,
}

#[derive(Serialize)]
struct Report {
    results: Vec<Row>,
}

/// Rounds of alternating batches: jwtkit and the primitive take turns, so a
/// noisy neighbour slows both alike, and the median of the rounds is quoted.
const ROUNDS: usize = 9;

/// Times `a` and `b` in alternating batches for about `budget` in total and
/// returns the median nanoseconds per operation of each.
fn measure<A: FnMut(), B: FnMut()>(budget: Duration, mut a: A, mut b: B) -> (f64, f64) {
    // Calibrate: how many iterations fill ~1/(2*ROUNDS) of the budget.
    let slice = budget.as_secs_f64() / (2 * ROUNDS) as f64;
    let mut n: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            a();
        }
        let t = start.elapsed().as_secs_f64();
        if t >= slice / 4.0 || n >= 1 << 30 {
            n = ((n as f64) * (slice / t.max(1e-9))).clamp(1.0, (1u64 << 32) as f64) as u64;
            break;
        }
        n *= 4;
    }
    let mut ta = Vec::with_capacity(ROUNDS);
    let mut tb = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..n {
            a();
        }
        ta.push(start.elapsed().as_nanos() as f64 / n as f64);
        let start = Instant::now();
        for _ in 0..n {
            b();
        }
        tb.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    (median(&mut ta), median(&mut tb))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `jwtkit speed`.
pub(crate) fn run(args: &SpeedArgs) -> Result<(), CliError> {
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        return Err(CliError::usage(
            "--seconds must be above 0 and at most 600 (it is spent per measurement)",
        ));
    }
    let algs: Vec<Algorithm> = if args.alg.is_empty() {
        Algorithm::ALL.to_vec()
    } else {
        args.alg
            .iter()
            .map(|a| super::parse_algorithm(a))
            .collect::<Result<_, _>>()?
    };
    let budget = Duration::from_secs_f64(args.seconds);
    let mut results = Vec::new();
    if !args.json {
        crate::write_stdout(
            format!(
                "{:<6} {:<6} {:>12} {:>12} {:>14} {:>8}\n",
                "alg", "op", "ops/s", "ns/op", "primitive ns", "ratio"
            )
            .as_bytes(),
        )?;
    }
    for alg in algs {
        let key = SigningKey::generate(alg).map_err(CliError::from_setup)?;
        let floor = Floor::new(alg, &key).map_err(CliError::from_setup)?;
        let validation = sample_validation(alg);
        let verifier =
            Verifier::new(key.verifying_key(), validation).map_err(CliError::from_setup)?;
        let signer = Signer::new(key, alg).map_err(CliError::from_setup)?;
        let token = signer.sign(&claims()).map_err(CliError::from_setup)?;
        // Check once, outside the timed loops, that both paths really work.
        verifier
            .verify::<Claims>(&token)
            .map_err(CliError::from_setup)?;
        let (input, sig_b64) = token
            .rsplit_once('.')
            .ok_or_else(|| CliError::io("signed token has no signature part"))?;
        let sig =
            jwt_core::b64::decode(sig_b64.as_bytes(), "signature").map_err(CliError::from_setup)?;
        if !floor.verify(input.as_bytes(), &sig) {
            return Err(CliError::io(format!(
                "the {alg} primitive did not verify jwtkit's signature"
            )));
        }
        let c = claims();
        let (sign_ns, sign_floor) = measure(
            budget,
            || {
                std::hint::black_box(signer.sign(std::hint::black_box(&c)).ok());
            },
            || {
                std::hint::black_box(floor.sign(std::hint::black_box(input.as_bytes())).ok());
            },
        );
        let (verify_ns, verify_floor) = measure(
            budget,
            || {
                std::hint::black_box(verifier.verify::<Claims>(std::hint::black_box(&token)).ok());
            },
            || {
                std::hint::black_box(floor.verify(std::hint::black_box(input.as_bytes()), &sig));
            },
        );
        for (op, ns, floor_ns) in [
            ("sign", sign_ns, sign_floor),
            ("verify", verify_ns, verify_floor),
        ] {
            if !args.json {
                crate::write_stdout(
                    format!(
                        "{:<6} {:<6} {:>12.0} {:>12.0} {:>14.0} {:>8.2}\n",
                        alg.as_str(),
                        op,
                        1e9 / ns,
                        ns,
                        floor_ns,
                        ns / floor_ns
                    )
                    .as_bytes(),
                )?;
            }
            results.push(Row {
                alg: alg.as_str(),
                op,
                ns_per_op: ns,
                primitive_ns_per_op: floor_ns,
            });
        }
    }
    if args.json {
        crate::write_stdout(crate::to_json_line(&Report { results })?.as_bytes())?;
    } else {
        crate::diag(format_args!(
            "medians of {ROUNDS} alternating rounds; verify checks the signature and 5 claims \
             (exp, nbf, iss, aud, sub); ratio = jwtkit / primitive"
        ));
    }
    Ok(())
}
