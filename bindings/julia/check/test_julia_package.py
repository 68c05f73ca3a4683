"""The Julia package's checks that need no Julia runtime (run by scripts/test-julia.sh):
fatou parses and lints every file clean; every ccall matches include/etcdrs.h; every
public function's sequence of C calls is the one test/c/sequences.c runs under valgrind
(tests/ffi: julia_call_sequences_are_clean_under_valgrind). Each check also shows here
that it fails on the mistakes it exists to catch."""

import subprocess

import pytest

from julia_package import (HEADER, PACKAGE, SEQUENCES_C, c_sequences, check_ccalls,
                           check_struct_layouts, fatou, julia_sequences, parse_julia)

SOURCES = sorted(PACKAGE.rglob("*.jl"))
LIB = PACKAGE / "src" / "libetcdrs.jl"
MAIN = PACKAGE / "src" / "Etcdrs.jl"


def test_the_package_has_its_files():
    names = {p.relative_to(PACKAGE).as_posix() for p in SOURCES}
    assert {"src/Etcdrs.jl", "src/libetcdrs.jl", "test/runtests.jl"} <= names
    assert (PACKAGE / "Project.toml").exists()


def test_fatou_parses_and_lints_every_file_clean():
    for path in SOURCES:
        subprocess.run([fatou(), "parse", "--verify", "--to", "sexpr", str(path)], check=True,
                       capture_output=True)
    lint = subprocess.run([fatou(), "lint", "--output", "concise", *map(str, SOURCES)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_readme_julia_example_parses_and_lints_clean(tmp_path):
    """It cannot run here (no Julia): it is checked as the package is."""
    import re
    readme = (PACKAGE.parents[2] / "README.md").read_text()
    blocks = re.findall(r"```julia\n(.*?)```", readme, re.S)
    assert len(blocks) == 1
    example = tmp_path / "example.jl"
    example.write_text(blocks[0])
    lint = subprocess.run([fatou(), "lint", str(example)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # It uses only what the package has.
    names = set(re.findall(r"Etcdrs\.(\w+)", blocks[0])) | {"start_node", "EtcdServer", "stop"}
    source = MAIN.read_text()
    for name in names:
        assert re.search(r"(function|const|struct)\s+%s\b|^%s\(" % (name, name), source, re.M), name


def test_fatou_fails_on_broken_julia(tmp_path):
    bad = tmp_path / "bad.jl"
    bad.write_text("function f(x\n    x +\nend\n")
    assert subprocess.run([fatou(), "lint", str(bad)], capture_output=True).returncode != 0


def test_every_ccall_matches_the_header():
    trees = [(p, parse_julia(p)) for p in SOURCES]
    assert check_ccalls(trees, HEADER.read_text()) == []
    assert check_struct_layouts(trees, HEADER.read_text()) == []
    # And there are many: one per C function the package uses.
    from julia_package import ccalls
    assert len(ccalls(trees[[p for p, _ in trees].index(LIB)][1])) >= 40


def test_the_ccall_check_catches_a_wrong_type_and_a_missing_symbol(tmp_path):
    text = LIB.read_text()
    wrong = text.replace(
        "(Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Bool, Bool, Bool, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}})",
        "(Ptr{Cvoid}, Ptr{UInt8}, Int32, Bool, Bool, Bool, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}})", 1)
    wrong = wrong.replace("fn(:etcdrs_client_exists)", "fn(:etcdrs_client_exist)", 1)
    wrong = wrong.replace("ccall(fn(:etcdrs_error_index), UInt64,", "ccall(fn(:etcdrs_error_index), Int64,", 1)
    assert ", Int32, Bool" in wrong and "etcdrs_client_exist)" in wrong and "), Int64," in wrong
    path = tmp_path / "libetcdrs.jl"
    path.write_text(wrong)
    problems = check_ccalls([(path, parse_julia(path))], HEADER.read_text())
    assert problems == [
        "libetcdrs.jl: etcdrs_error_index: returns uint64_t in C, Int64 here",
        "libetcdrs.jl: etcdrs_client_get: parameter 3 is size_t in C, Int32 here",
        "libetcdrs.jl: etcdrs_client_exist: no such function in include/etcdrs.h",
    ]
    # A struct of another layout is caught too.
    moved = text.replace("    data::Ptr{UInt8}\n    len::Csize_t", "    len::Csize_t\n    data::Ptr{UInt8}")
    path.write_text(moved)
    assert check_struct_layouts([(path, parse_julia(path))], HEADER.read_text()) != []


def test_every_public_function_runs_its_c_sequence_in_the_c_test():
    julia = julia_sequences(parse_julia(MAIN))
    c = c_sequences(SEQUENCES_C.read_text())
    # Every public function that calls C has a C mirror making the same calls in order.
    missing = sorted(name for name, seq in julia.items() if seq and name not in c)
    assert missing == []
    differ = {name: (julia[name], c[name]) for name in julia if name in c and julia[name] != c[name]}
    assert differ == {}
    # The seed's API is all there.
    seed = {"set", "get", "create", "create_dir", "update", "update_dir", "compare_and_swap",
            "compare_and_delete", "delete", "delete_dir", "exists", "watch", "keep_watching",
            "watch_until", "machines", "stats", "set_leader", "get_leader", "delete_leader",
            "lock_acquire", "lock_retrieve", "lock_renew", "lock_release"}
    assert seed <= {name.split("#")[0] for name in julia}
    assert julia["set"] == ["etcdrs_client_set", "etcdrs_error_code", "etcdrs_error_message",
                            "etcdrs_error_cause", "etcdrs_error_index", "etcdrs_error_free",
                            "etcdrs_response_json", "etcdrs_response_free"]


def test_the_sequence_check_catches_a_missing_free(tmp_path):
    text = MAIN.read_text().replace("    etcdrs_string_free(p)\n", "", 1)
    path = tmp_path / "Etcdrs.jl"
    path.write_text(text)
    julia = julia_sequences(parse_julia(path))
    c = c_sequences(SEQUENCES_C.read_text())
    assert julia["machines"] != c["machines"]
    assert c["machines"][-1] == "etcdrs_string_free"
