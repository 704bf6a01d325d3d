//! Runs every example's `main` (CI builds them; this checks that they work).

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[path = "../examples/rs256_pem.rs"]
mod rs256_pem;

#[path = "../examples/es256_pem.rs"]
mod es256_pem;

#[path = "../examples/refresh_flow.rs"]
mod refresh_flow;

#[path = "../examples/jwks_verify.rs"]
mod jwks_verify;

#[path = "../examples/axum_service.rs"]
mod axum_service;

#[test]
fn quickstart_runs() {
    quickstart::main().unwrap();
}

#[test]
fn rs256_pem_runs() {
    rs256_pem::main().unwrap();
}

#[test]
fn es256_pem_runs() {
    es256_pem::main().unwrap();
}

#[test]
fn refresh_flow_runs() {
    refresh_flow::main().unwrap();
}

#[test]
fn jwks_verify_runs() {
    jwks_verify::main().unwrap();
}

#[test]
fn axum_service_runs() {
    axum_service::main().unwrap();
}

#[path = "../examples/kms_store.rs"]
mod kms_store;

#[path = "../examples/vault_store.rs"]
mod vault_store;

#[test]
fn kms_store_runs_against_moto() {
    kms_store::main().unwrap();
}

#[test]
fn vault_store_runs_against_openbao() {
    vault_store::main().unwrap();
}
