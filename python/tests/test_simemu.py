"""The Python package against the command line: the same inputs give the same
bits, arrays reach the statistics without a copy, bad input raises a clear
exception.

The command-line binary is ``$SIMEMU_BIN`` or the workspace's
``target/{debug,release}/simemu`` (``cargo build -p simemu-cli``).
"""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import simemu

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cli_binary() -> str:
    candidates = [os.environ.get("SIMEMU_BIN")] + [
        str(ROOT / "target" / profile / "simemu") for profile in ("debug", "release")
    ]
    for c in candidates:
        if c and os.path.exists(c):
            return os.path.abspath(c)
    pytest.fail("no simemu binary: build it with `cargo build -p simemu-cli` or set SIMEMU_BIN")


def cli(*args: str, cwd: pathlib.Path) -> str:
    done = subprocess.run(
        [cli_binary(), "-q", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, "SIMEMU_LOG": "warn"}
    )
    assert done.returncode == 0, f"simemu {args}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def maps_dir(tmp_path_factory) -> pathlib.Path:
    """Two sets of 24 simulated 32² maps, written by the command line."""
    d = tmp_path_factory.mktemp("maps")
    cli("--seed", "7", "simulate", "convergence", "--option", "size=32", "--count", "24", "--out", "a", cwd=d)
    cli("--seed", "8", "simulate", "convergence", "--option", "size=32", "--count", "24", "--out", "b", cwd=d)
    return d


def test_plugins_list_the_registry():
    p = simemu.plugins()
    assert {"convergence", "calorimeter"} <= {s["name"] for s in p["simulators"]}
    assert {"dcgan", "simulator", "gaussian-field"} <= {g["name"] for g in p["generators"]}
    assert {"pixel-pdf", "power-spectrum", "minkowski", "peaks"} <= {s["name"] for s in p["statistics"]}
    assert simemu.__version__ == cli("--version", cwd=ROOT).split()[1]


def test_simulated_maps_equal_the_command_lines(maps_dir, tmp_path):
    maps = simemu.simulate("convergence", 24, options={"size": 32}, seed=7)
    assert maps.dtype == np.float32 and maps.shape == (24, 32, 32)
    written = simemu.open_dataset(maps_dir / "a")
    assert np.array_equal(maps.view(np.uint32), written.array().view(np.uint32))
    assert written.seeds is not None and len(written.seeds) == 24
    # The grid form: samples and their parameters.
    cli(
        "--seed", "3", "simulate", "convergence", "--option", "size=16", "--grid", "omega_m=0.2:0.4:3",
        "--param", "sigma_8=0.9", "--count", "2", "--out", "grid", cwd=tmp_path,
    )
    samples, table = simemu.simulate(
        "convergence", 2, params={"sigma_8": 0.9}, options={"size": 16}, seed=3, grid={"omega_m": (0.2, 0.4, 3)}
    )
    grid = simemu.open_dataset(tmp_path / "grid")
    assert np.array_equal(samples, grid.array())
    assert np.array_equal(table["omega_m"], grid.params[:, grid.param_names.index("omega_m")])
    assert np.allclose(table["omega_m"], [0.2, 0.2, 0.3, 0.3, 0.4, 0.4], rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["power-spectrum", "bispectrum", "minkowski", "peaks", "pixel-pdf"])
def test_statistics_equal_the_command_lines(maps_dir, name):
    cli("stat", name, "a", "--json", f"{name}.json", cwd=maps_dir)
    expected = json.loads((maps_dir / f"{name}.json").read_text())
    maps = simemu.open_dataset(maps_dir / "a").array()
    x, values = simemu.statistic(name, maps, angle_deg=3.5)
    assert np.array_equal(x, expected["x"])
    components = list(expected["components"])
    got = values if len(components) > 1 else values[np.newaxis]
    for c, comp in enumerate(components):
        assert np.array_equal(got[c], np.asarray(expected["components"][comp])), comp


def test_lenstools_style_calls_return_lenstools_shapes(maps_dir):
    maps = simemu.open_dataset(maps_dir / "a").array()
    edges = np.geomspace(200, 3000, 9)
    ell, power = simemu.power_spectrum(maps[0], angle_deg=3.5, ell_edges=edges)
    assert ell.shape == (8,) and power.shape == (8,)
    assert np.allclose(ell, 0.5 * (edges[1:] + edges[:-1]))
    _, stack = simemu.power_spectrum(maps, 3.5, edges)
    assert stack.shape == (24, 8) and np.array_equal(stack[0], power)
    v, V0, V1, V2 = simemu.minkowski(maps, thresholds=np.linspace(-2, 2, 11), sigma_units=True)
    assert v.shape == (10,) and V0.shape == V1.shape == V2.shape == (24, 10)
    assert np.all(np.diff(V0, axis=1) <= 0), "V0 falls with the threshold"
    assert simemu.peaks(maps[0], np.linspace(-2, 4, 7), sigma_units=True)[1].shape == (6,)
    assert simemu.pixel_pdf(maps, np.linspace(-2, 4, 7), sigma_units=True)[1].shape == (24, 6)
    ell, folded = simemu.statistic("bispectrum", maps, angle_deg=3.5, configuration="folded", ratio=0.5)
    assert folded.shape == (24, len(ell)) and np.all(np.isfinite(folded))


def test_contiguous_float32_is_read_in_place_and_strided_arrays_are_copied(maps_dir):
    maps = simemu.open_dataset(maps_dir / "a").array()
    assert maps.flags.c_contiguous and maps.dtype == np.float32
    _, direct = simemu.statistic("peaks", maps)
    assert simemu._simemu.last_statistic_read_in_place()
    transposed = np.ascontiguousarray(maps.transpose(0, 2, 1)).transpose(0, 2, 1)
    assert not transposed.flags.c_contiguous
    _, strided = simemu.statistic("peaks", transposed)
    assert not simemu._simemu.last_statistic_read_in_place()
    assert np.array_equal(direct, strided)
    _, wide = simemu.statistic("peaks", maps.astype(np.float64))
    assert np.array_equal(direct, wide), "float32 gives the bits of its float64 copy"


def test_ks_p_values_equal_the_command_lines(maps_dir, tmp_path):
    cli(
        "validate", "--reference", "a", "--candidate", "b", "--stats", "pixel-pdf,power-spectrum,minkowski",
        "--out", str(tmp_path / "cli"), cwd=maps_dir,
    )
    expected = json.loads((tmp_path / "cli" / "report.json").read_text())
    a = simemu.open_dataset(maps_dir / "a").array()
    b = simemu.open_dataset(maps_dir / "b").array()
    stats = ["pixel-pdf", "power-spectrum", "minkowski"]
    for result in (
        simemu.validate(a, b, stats=stats, angle_deg=3.5),
        simemu.validate(maps_dir / "a", maps_dir / "b", stats=stats),
    ):
        got = result.to_dict()
        for e, g in zip(expected["statistics"], got["statistics"]):
            for ce, cg in zip(e["components"], g["components"]):
                assert ce["ks_p"] == cg["ks_p"] and ce["cand_mean"] == cg["cand_mean"], e["statistic"]
        assert result.verdicts == {s["statistic"]: s["verdict"] for s in expected["summary"]}
    rows = result.table()
    assert len(rows) == 30 + 12 + 90 and {"ks_p", "ref_mean", "passes"} <= set(rows[0])
    md = result.report(tmp_path / "py-report")
    assert os.path.exists(md) and (tmp_path / "py-report" / "report.json").exists()


def test_tests_by_name_equal_the_command_lines(maps_dir, tmp_path):
    cli(
        "validate", "--reference", "a", "--candidate", "b", "--stats", "pixel-pdf,peaks,fpd,kpd,covariance,c2st",
        "--out", str(tmp_path / "cli"), cwd=maps_dir,
    )
    expected = {t["test"]: t for t in json.loads((tmp_path / "cli" / "report.json").read_text())["vector_tests"]}
    result = simemu.validate(
        maps_dir / "a", maps_dir / "b", stats=["pixel-pdf", "peaks", "fpd", "kpd", "covariance", "c2st"]
    )
    assert set(result.tests) == {"fpd", "kpd", "covariance", "c2st"}
    for name, t in result.tests.items():
        assert t["value"] == expected[name]["value"] and t["floor"] == expected[name]["floor"], name
        assert t["flagged"] == expected[name]["flagged"], name
    assert 0.0 <= result.tests["c2st"]["auc"] <= 1.0 and 0.0 < result.tests["c2st"]["p_value"] <= 1.0
    assert "c2st" in result.summary()
    with pytest.raises(ValueError, match="names only tests"):
        simemu.validate(maps_dir / "a", maps_dir / "b", stats=["fpd"])


def test_to_pandas(maps_dir):
    pandas = pytest.importorskip("pandas")
    result = simemu.validate(maps_dir / "a", maps_dir / "b", stats=["peaks"])
    frame = result.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 30


def test_generated_maps_equal_the_command_lines(tmp_path):
    cli("--seed", "5", "generate", "--checkpoint", "builtin:convergence-64", "--count", "70", "--out", "g", cwd=tmp_path)
    expected = simemu.open_dataset(tmp_path / "g").array()
    generator = simemu.load("builtin:convergence-64")
    assert generator.name == "dcgan" and generator.param_names == []
    got = generator.generate(70, seed=5)
    assert got.shape == (70, 64, 64) and np.array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_generators_load_on_a_named_device():
    on_cpu = simemu.load("builtin:convergence-64", device="cpu").generate(3, seed=2)
    assert np.array_equal(on_cpu.view(np.uint32), simemu.load("builtin:convergence-64").generate(3, seed=2).view(np.uint32))
    with pytest.raises(simemu.InvalidInputError, match="'gpu' is not one of cpu, cuda, cuda:N"):
        simemu.load("builtin:convergence-64", device="gpu")
    # The Python package is built without CUDA.
    with pytest.raises(simemu.InvalidInputError, match="built without CUDA"):
        simemu.load("builtin:convergence-64", device="cuda:0")


def test_the_conditional_model_generates_inside_its_box(tmp_path):
    cli("--seed", "5", "generate", "--checkpoint", "builtin:convergence-64-conditional", "--count", "6",
        "--param", "omega_m=0.27", "--param", "sigma_8=0.84", "--out", "g", cwd=tmp_path)
    expected = simemu.open_dataset(tmp_path / "g").array()
    generator = simemu.load("builtin:convergence-64-conditional")
    assert generator.param_names == ["omega_m", "sigma_8"]
    got = generator.generate(6, {"omega_m": 0.27, "sigma_8": 0.84}, seed=5)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))
    with pytest.raises(simemu.Error, match="outside its bounds"):
        generator.generate(1, {"omega_m": 0.5, "sigma_8": 0.8})


def test_datasets_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(5, 8, 8)).astype(np.float32)
    params = {"omega_m": np.linspace(0.2, 0.4, 5), "sigma_8": np.full(5, 0.8)}
    ds = simemu.write_dataset(tmp_path / "mine", maps, params=params, attrs={"angle_deg": 2.0})
    assert len(ds) == 5 and ds.param_names == ["omega_m", "sigma_8"]
    assert np.array_equal(ds.array(), maps) and np.array_equal(ds.array(start=1, stop=3), maps[1:3])
    assert np.array_equal(ds.params[:, 0], params["omega_m"])
    assert ds.fields[0]["attrs"]["angle_deg"] == 2.0
    with pytest.raises(simemu.Error, match="exists"):
        simemu.write_dataset(tmp_path / "mine", maps)
    simemu.write_dataset(tmp_path / "mine", maps[:2], force=True)
    assert len(simemu.open_dataset(tmp_path / "mine")) == 2
    # force replaces only what simemu wrote.
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "main.py").write_text("print()\n")
    with pytest.raises(simemu.InvalidInputError, match="not a dataset, run, report or export"):
        simemu.write_dataset(tmp_path / "code", maps, force=True)
    assert (tmp_path / "code" / "main.py").read_text() == "print()\n"


def test_bad_input_raises_a_clear_exception():
    maps = simemu.simulate("convergence", 2, options={"size": 16}, seed=1)
    with pytest.raises(ValueError, match="shape"):
        simemu.power_spectrum(maps[0, 0], angle_deg=3.5)
    with pytest.raises(ValueError, match="shape"):
        simemu.statistic("power-spectrum", maps[:, :8], angle_deg=3.5)
    bad = maps.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite pixel at row 2, column 3"):
        simemu.statistic("minkowski", bad, thresholds=[-0.1, 0.0, 0.1])
    with pytest.raises(ValueError, match="not numeric"):
        simemu.statistic("peaks", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(simemu.InvalidInputError, match="unknown statistic 'trispectrum'"):
        simemu.statistic("trispectrum", maps)
    with pytest.raises(ValueError, match="unknown parameter 'omega_x'"):
        simemu.simulate("convergence", 1, params={"omega_x": 0.3})
    with pytest.raises(simemu.InvalidInputError, match="of memory"):
        simemu.simulate("convergence", 10**12, options={"size": 64})
    with pytest.raises(simemu.InvalidInputError, match="parameter points"):
        simemu.simulate("convergence", 1, grid={"omega_m": (0.2, 0.4, 10**4), "sigma_8": (0.7, 0.9, 10**4)})
    with pytest.raises(ValueError, match="must be positive"):
        simemu.power_spectrum(maps, angle_deg=-2)
    with pytest.raises(FileNotFoundError):
        simemu.open_dataset("/nonexistent/simemu-dataset")
    with pytest.raises(simemu.Error, match="not an option"):
        simemu.validate(maps, maps, stats=["peaks"], ell_edges="lin:100:1000:4")
    assert issubclass(simemu.InvalidInputError, simemu.Error)


def test_dynamic_plugins_load():
    names = [
        ROOT / "target" / profile / sub / "libsimemu_plugin_template.so"
        for profile in ("debug", "release")
        for sub in ("", "deps")
    ]
    found = [n for n in names if n.exists()]
    if not found:
        pytest.skip("the template plugin is not built (cargo build -p simemu-plugin-template)")
    simemu.load_plugin(found[0])
    assert "white-noise" in {s["name"] for s in simemu.plugins()["simulators"]}
