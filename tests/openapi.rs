//! The checked-in OpenAPI document must match what the service serves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

#[test]
fn the_checked_in_openapi_document_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let generated = netbox_toolkit::api::openapi_json().unwrap();

    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();

    assert!(
        checked_in.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale; regenerate it with `UPDATE_OPENAPI=1 cargo test --test openapi`"
    );
}
