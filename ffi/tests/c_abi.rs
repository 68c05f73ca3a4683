//! The C tests (ffi/tests/c/test_etcdrs.c), compiled by gcc against the committed header and
//! linked once against libetcdrs.so and once against libetcdrs.a; the same program under
//! valgrind; the Julia package's C call sequences (bindings/julia/Etcdrs/test/c/sequences.c)
//! under valgrind; and examples/c/hello.c and v3.c built with pkg-config after an install to
//! a prefix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// target/<profile>: where cargo put libetcdrs.so and libetcdrs.a for this test build.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    for lib in ["libetcdrs.so", "libetcdrs.a"] {
        assert!(
            dir.join(lib).exists(),
            "{} is missing: build the ffi crate first",
            dir.join(lib).display()
        );
    }
    dir
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What a static link of a Rust library needs from the system (as `Libs.private` says).
const STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Compile the C tests into `dir`, linked dynamically or statically.
fn compile(dir: &Path, dynamic: bool) -> PathBuf {
    compile_source(&repo().join("ffi/tests/c/test_etcdrs.c"), dir, dynamic)
}

/// Compile one C test program into `dir`, linked dynamically or statically.
fn compile_source(source: &Path, dir: &Path, dynamic: bool) -> PathBuf {
    let lib = lib_dir();
    let exe = dir.join(if dynamic { "test_dyn" } else { "test_static" });
    let mut gcc = Command::new("gcc");
    gcc.args([
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-g",
    ])
    .arg("-I")
    .arg(repo().join("include"))
    .arg(source)
    .arg("-o")
    .arg(&exe)
    .arg("-pthread");
    if dynamic {
        gcc.arg(format!("-L{}", lib.display()))
            .arg("-letcdrs")
            .arg(format!("-Wl,-rpath,{}", lib.display()));
    } else {
        gcc.arg(lib.join("libetcdrs.a")).args(STATIC_LIBS);
    }
    run(&mut gcc);
    exe
}

/// valgrind, failing on memory errors and on definite leaks.
const VALGRIND: &[&str] = &[
    "valgrind",
    "--error-exitcode=99",
    "--leak-check=full",
    "--show-leak-kinds=definite",
    "--errors-for-leak-kinds=definite",
    concat!(
        "--suppressions=",
        env!("CARGO_MANIFEST_DIR"),
        "/tests/valgrind.supp"
    ),
];

fn assert_clean(report: &str) {
    assert!(
        report.contains("ERROR SUMMARY: 0 errors"),
        "valgrind found errors:\n{report}"
    );
    assert!(
        report.contains("definitely lost: 0 bytes")
            || report.contains("All heap blocks were freed"),
        "valgrind found leaks:\n{report}"
    );
}

fn run_c_tests(exe: &Path, under: Option<&[&str]>) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = match under {
        Some(wrapper) => {
            let mut c = Command::new(wrapper[0]);
            c.args(&wrapper[1..]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    // The in-process cluster's peer URLs.
    cmd.arg(scratch.path())
        .args(etcdrs_tests::free_ports(3).iter().map(u16::to_string));
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("ok: "), "{stdout}");
    stdout + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn c_tests_pass_linked_against_the_shared_library() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path(), true);
    run_c_tests(&exe, None);
}

#[test]
fn c_tests_pass_linked_against_the_static_library() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path(), false);
    // Nothing of libetcdrs.so is needed at run time.
    let ldd = run(Command::new("ldd").arg(&exe));
    assert!(!String::from_utf8_lossy(&ldd.stdout).contains("libetcdrs"));
    run_c_tests(&exe, None);
}

/// No invalid reads or writes, and nothing definitely lost.
#[test]
fn c_tests_are_clean_under_valgrind() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path(), true);
    let report = run_c_tests(&exe, Some(VALGRIND));
    assert_clean(&report);
}

/// What the Julia package does, C call by C call (bindings/julia/check proves the calls are
/// the package's), runs against a member in the process and over HTTP, clean under valgrind.
#[test]
fn julia_call_sequences_are_clean_under_valgrind() {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile_source(
        &repo().join("bindings/julia/Etcdrs/test/c/sequences.c"),
        dir.path(),
        true,
    );
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(VALGRIND[0]);
    cmd.args(&VALGRIND[1..]).arg(&exe).arg(scratch.path());
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok: "), "{stdout}");
    assert_clean(&String::from_utf8_lossy(&out.stderr));
}

/// The README's way: install to a prefix, compile the example with pkg-config, run it.
#[test]
fn the_example_builds_with_pkg_config_from_an_installed_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let lib = lib_dir();
    let profile = lib.file_name().unwrap().to_string_lossy().into_owned();
    let target = lib.parent().unwrap();
    let mut install = Command::new(repo().join("scripts/install-libetcdrs.sh"));
    install
        .arg(prefix.path())
        .arg("--no-build")
        .env("CARGO_TARGET_DIR", target);
    if profile != "release" {
        install.arg("--debug");
    }
    run(&mut install);
    let pc_path = prefix.path().join("lib/pkgconfig");
    let flags = run(Command::new("pkg-config")
        .args(["--cflags", "--libs", "etcdrs"])
        .env("PKG_CONFIG_PATH", &pc_path));
    let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
    // Each example, built as the README says and run.
    let example = |name: &str| {
        let exe = prefix.path().join(name);
        run(Command::new("gcc")
            .arg(repo().join(format!("examples/c/{name}.c")))
            .args(["-Wall", "-Wextra", "-Werror"])
            .args(flags.split_whitespace())
            .arg(format!(
                "-Wl,-rpath,{}",
                prefix.path().join("lib").display()
            ))
            .arg("-o")
            .arg(&exe));
        let data = prefix.path().join(format!("{name}.etcd"));
        let out = run(Command::new(&exe).arg(&data));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = example("hello");
    assert!(stdout.contains("/message = Hello world"), "{stdout}");
    assert!(
        stdout.contains(r#"{"action":"get","node":{"key":"/message","value":"Hello world""#),
        "{stdout}"
    );
    let stdout = example("v3");
    for expected in [
        "/jobs/1 = build (created at revision 2, version 1)",
        "txn succeeded: yes",
        "granted for 30 s",
        "event: PUT /jobs/1 = build at revision 2",
        "event: PUT /jobs/1 = taken at revision 3",
        "event: PUT /jobs/lock = me at revision 4",
        r#""kvs":[{"key":"L2pvYnMvMQ==","create_revision":"2","mod_revision":"3","version":"2","value":"dGFrZW4="}"#,
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
}
