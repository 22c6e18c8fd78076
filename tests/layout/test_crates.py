"""The workspace's shape, as issue "Crates by role" defines it: a pure core, an I/O library,
one crate per binary; no deployed function built from another function's crate; no
hand-signed AWS requests; no import cycle between the files of any crate."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = {"endpoint", "pull", "compaction"}
FUNCTIONS = DEPLOYED | {"klaviyo-source"}


def metadata():
    result = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    return {package["name"]: package for package in json.loads(result.stdout)["packages"]}


def normal_tree(package):
    """Every crate `package` links in a normal (not dev, not build) build."""
    result = subprocess.run(["cargo", "tree", "--locked", "-e", "normal", "-p", package,
                             "--prefix", "none", "--format", "{p}"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    return {line.split()[0] for line in result.stdout.splitlines() if line.strip()}


def test_the_core_links_no_runtime_io_clock_or_randomness():
    linked = normal_tree("source-core")
    assert "serde_json" in linked  # the tree was read
    for crate in ["tokio", "fastrand", "getrandom", "rand", "mimalloc", "hyper", "axum", "iana-time-zone"]:
        assert crate not in linked, crate
    assert not [crate for crate in linked if crate.startswith("aws-")]


def test_the_io_library_has_no_http_server_or_command_line():
    linked = normal_tree("source-io")
    assert "aws-sdk-s3" in linked
    for crate in ["axum", "clap", "lambda_http", "lambda_runtime"]:
        assert crate not in linked, crate


def test_no_deployed_function_depends_on_another_functions_crate():
    packages = metadata()
    assert FUNCTIONS <= set(packages)
    for name in DEPLOYED:
        depends_on = {dependency["name"] for dependency in packages[name]["dependencies"]}
        assert not depends_on & (FUNCTIONS - {name}), (name, depends_on & FUNCTIONS)


def test_every_s3_call_goes_through_the_sdk():
    for name, package in metadata().items():
        depends_on = {dependency["name"] for dependency in package["dependencies"]}
        assert "aws-sigv4" not in depends_on, name
    assert not (ROOT / "functions/ingest").exists()


def test_no_import_cycle_in_any_crate():
    result = subprocess.run([sys.executable, "scripts/module_cycles.py"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "no import cycle in 6 crates"


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    """The checker above is only worth something if it can fail."""
    src = tmp_path / "demo" / "src"
    src.mkdir(parents=True)
    (src / "lib.rs").write_text("pub mod a;\npub mod b;\n")
    (src / "a.rs").write_text("use crate::b::B;\npub struct A;\n")
    (src / "b.rs").write_text("use super::a::A;\npub struct B;\n")
    sys.path.insert(0, str(ROOT / "scripts"))
    import module_cycles
    graph = module_cycles.edges(src)
    assert module_cycles.cycles(graph) == [[src / "a.rs", src / "b.rs"]]
    (src / "b.rs").write_text("pub struct B;\n")
    assert module_cycles.cycles(module_cycles.edges(src)) == []
