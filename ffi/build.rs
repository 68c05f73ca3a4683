//! Generate the C header from the crate with the pinned cbindgen into OUT_DIR. The committed
//! include/etcdrs.h must equal it (tests/header.rs checks; scripts/ffi-header.sh updates it).
//!
//! `etcdrs_code` comes from the core's one error table (the `error_table!` rows in
//! core/src/error.rs): cbindgen cannot expand macros, so the rows are read here and written
//! out as a plain enum for cbindgen to see.

use std::fmt::Write as _;

fn main() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let table = format!("{crate_dir}/../core/src/error.rs");
    println!("cargo:rerun-if-changed={table}");
    let codes = out.join("error_codes.rs");
    std::fs::write(
        &codes,
        error_code_enum(&std::fs::read_to_string(&table).expect("core/src/error.rs")),
    )
    .expect("write error_codes.rs");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("ffi/cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_src(&codes)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(out.join("etcdrs.h"));
}

/// The `ErrorCode` enum as Rust source, from the rows of the `error_table!` invocation:
/// `/// doc` lines, `// comments`, and `Name = number, status, "message";`.
fn error_code_enum(source: &str) -> String {
    let start = source
        .find("\nerror_table! {\n")
        .expect("the error_table! invocation in core/src/error.rs");
    let mut rust = String::from(
        "/// etcd's v2 error codes (api/v2error) plus etcdrs library codes from 1000 up.\n#[repr(u32)]\npub enum ErrorCode {\n",
    );
    for line in source[start + 1..].lines().skip(1) {
        let line = line.trim();
        if line == "}" {
            break;
        }
        if line.starts_with("///") {
            writeln!(rust, "    {line}").unwrap();
        } else if let Some((name, rest)) = line.split_once(" = ") {
            let number = rest.split(',').next().expect("a code number");
            writeln!(rust, "    {name} = {number},").unwrap();
        }
    }
    rust.push_str("}\n");
    rust
}
