//! The committed include/etcdrs.h must be exactly what the pinned cbindgen generates from
//! this crate (build.rs writes it to OUT_DIR). `scripts/ffi-header.sh` updates it.

#[test]
fn the_committed_header_is_the_generated_one() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/etcdrs.h"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/etcdrs.h");
    if std::env::var_os("ETCDRS_BLESS_HEADER").is_some() {
        std::fs::write(path, generated).expect("write include/etcdrs.h");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/etcdrs.h differs from what cbindgen generates from ffi/: run scripts/ffi-header.sh and commit it"
    );
}
