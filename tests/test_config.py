from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nmhpo.config import FixedParam, StudyConfig, load_config
from nmhpo.errors import ConfigError
from tests.conftest import tiny_study_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_good_file_loads_with_defaults(tiny_study: Path) -> None:
    cfg = load_config(tiny_study)
    assert cfg.study.name == "tiny"
    assert cfg.study.sampler == "tpe"
    assert [o.resolved_direction for o in cfg.study.objectives] == ["maximize", "minimize"]
    assert isinstance(cfg.space.software["epochs"], FixedParam)
    assert set(cfg.searched()) == {"lr", "num_steps", "encoding", "xbar_size", "adc_bits"}
    assert cfg.fixed_software()["epochs"] == 2
    assert cfg.fixed_software()["beta"] == 0.9  # registry default
    assert cfg.storage_url() == f"sqlite:///{tiny_study.parent.resolve() / 'nmhpo-studies.db'}"


def test_direction_defaults_to_the_metrics_natural_one(tmp_path: Path) -> None:
    text = tiny_study_text().replace(', direction = "minimize"', "")
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert load_config(path).study.objectives[1].resolved_direction == "minimize"


def test_identity_hash_ignores_run_settings_but_not_the_space(tmp_path: Path) -> None:
    base = tmp_path / "a.toml"
    base.write_text(tiny_study_text(n_trials=3))
    more = tmp_path / "b.toml"
    more.write_text(tiny_study_text(n_trials=50, sampler="random"))
    other = tmp_path / "c.toml"
    other.write_text(tiny_study_text().replace("high = 5, grid", "high = 6, grid"))
    h = load_config(base).identity_hash()
    assert load_config(more).identity_hash() == h
    assert load_config(other).identity_hash() != h


def test_preset_constants_can_be_overridden_from_the_study(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        tiny_study_text().replace(
            'preset = "spikesim-65nm"',
            'preset = "spikesim-65nm"\n[hardware.constants.energy_pj]\nadc = 4.0',
        )
    )
    cfg = load_config(path)
    assert cfg.preset().constants["energy_pj"]["adc"] == 4.0
    assert cfg.preset().constants["energy_pj"]["mux"] == 0.094245


def test_relative_sqlite_storage_is_relative_to_the_study_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(tiny_study_text().replace('sampler = "tpe"', 'storage = "sqlite:///x.db"'))
    assert load_config(path).storage_url() == f"sqlite:///{(tmp_path / 'x.db').resolve()}"


def test_shipped_study_by_name_stores_in_nmhpo_home_wherever_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NMHPO_HOME", str(tmp_path / "home"))
    urls = set()
    for cwd in (tmp_path, tmp_path / "elsewhere"):
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)
        cfg = load_config("quickstart")
        assert cfg.study.name == "quickstart"
        urls.add(cfg.storage_url())
    assert urls == {f"sqlite:///{(tmp_path / 'home').resolve() / 'nmhpo-studies.db'}"}
    monkeypatch.delenv("NMHPO_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    expected = (tmp_path / "xdg" / "nmhpo").resolve() / "nmhpo-studies.db"
    assert load_config("quickstart").storage_url() == f"sqlite:///{expected}"


# (replace this, with that) in the tiny study -> substring the one-line error must contain
BAD = [
    (
        "hidden_size = 32",
        "decoder_layers = 1",
        "space.software.decoder_layers: expected 0: the digits task's targets are no image",
    ),
    ('sampler = "tpe"', 'sampler = "tpee"', "study.sampler: expected one of 'tpe'"),
    ("n_trials = 3", "n_trials = 0", "study.n_trials: expected greater than or equal to 1"),
    ("n_trials = 3", 'n_trials = "many"', "study.n_trials: expected a valid integer"),
    ("seed = 0", "seed = 0\nsede = 1", "study.sede: unknown key; expected one of name, storage"),
    ('name = "tiny"', 'name = "bad name!"', "study.name: expected letters"),
    ('name = "energy_uj"', 'name = "energy_joules"', "study.objectives[1].name: expected one of"),
    ('direction = "minimize"', 'direction = "down"', "study.objectives[1].direction"),
    ('name = "digits"', 'name = "imagenet"', "task.name: expected one of digits, mnist, bragg"),
    ('preset = "spikesim-65nm"', 'preset = "nope"', "hardware.preset: unknown hardware preset"),
    ('preset = "spikesim-65nm"', 'preset = "spikesim-65nm"\nadc_bits = 40', "hardware.adc_bits"),
    ('preset = "spikesim-65nm"', 'preset = "spikesim-65nm"\ndevice = "pcm"', "hardware.device"),
    (
        'preset = "spikesim-65nm"',
        'preset = "spikesim-65nm"\n[hardware.constants.energy_pj]\nadcc = 1.0',
        "hardware.constants.energy_pj.adcc: unknown constant; expected one of xbar_rram",
    ),
    (
        'preset = "spikesim-65nm"',
        'preset = "spikesim-65nm"\n[hardware.constants.volts]\nx = 1.0',
        "hardware.constants.volts: unknown section",
    ),
    (
        "low = 0.005, high = 0.05",
        "low = 0.05, high = 0.005",
        "space.software.lr: low must be < high",
    ),
    ("low = 0.005, high = 0.05, log", "low = 0.0, high = 0.05, log", "log scale needs low > 0"),
    ("grid = [0.01, 0.03]", "grid = [0.01, 0.5]", "grid level 0.5 is outside"),
    ('type = "float"', 'type = "real"', "space.software.lr.type: expected one of float, int"),
    ("hidden_size = 32", "hidden_sz = 32", "space.software.hidden_sz: unknown parameter"),
    ("hidden_size = 32", "hidden_size = 0", "space.software.hidden_size: expected an integer"),
    ('choices = ["rate", "direct"]', 'choices = ["rate", "morse"]', "space.software.encoding"),
    ('choices = ["rate", "direct"]', 'choices = ["rate", "rate"]', "choices must be distinct"),
    ("xbar_size = {", "xbar_sz = {", "space.hardware.xbar_sz: unknown parameter"),
    ("choices = [32, 64]", "choices = [32, -64]", "space.hardware.xbar_size: expected an integer"),
    ('num_steps = { type = "int"', 'num_steps = { type = "float"', "expected int"),
    ('sampler = "tpe"', 'storage = "nonsense"', "study.storage: expected an SQLAlchemy URL"),
    ('sampler = "tpe"', 'storage = "oracle://u:pw@h/db"', "got 'oracle://u:***@h/db'"),
    ("[task]", "[tsak]", "tsak: unknown key; expected one of study, task, hardware, space"),
    ('name = "digits"', "", "task.name: missing"),
    ("n_train = 600", "n_trian = 600", "task.n_trian: unknown key for task digits; expected one"),
    ("n_train = 600", "n_train = 5", "task.n_train: expected greater than or equal to 10"),
    ("[study]", "[study", "invalid TOML"),
    ("seed = 0", "seed = -1", "study.seed: expected greater than or equal to 0; got -1"),
    ("n_train = 600", 'path = ""', "task.path: expected a value; got an empty string"),
    ("n_train = 600", "n_train = 600\ndata_seed = -3", "task.data_seed: expected greater than"),
    (
        'adc_bits = { type = "int", low = 3, high = 5, grid = [3, 5] }',
        'adc_bits = { type = "int", low = 3, high = 6, step = 10 }',
        "space.hardware.adc_bits: high - low must be a multiple of step; got low=3, high=6",
    ),
    (
        "low = 0.005, high = 0.05, log = true, grid = [0.01, 0.03]",
        "low = 0.001, high = 0.03, step = 0.007",
        "space.software.lr: high - low must be a multiple of step",
    ),
    ('pruner = "none"', 'pruner = "hyperband"', "study.pruner: expected"),
    (
        'sampler = "tpe"\nn_trials = 3\nseed = 0\npruner = "none"',
        'sampler = "grid"\nn_trials = 3\nseed = 0\npruner = "asha"',
        "study.pruner: a grid search evaluates every point in full",
    ),
    (
        "[task]",
        "[study.pruning]\nreduction_factor = 1\n[task]",
        "study.pruning.reduction_factor: expected greater than 1",
    ),
    ("[task]", "[study.pruning]\nmin_rung = 1\n[task]", "study.pruning.min_rung: unknown key"),
    (
        "hidden_size = 32",
        'training = "slayer"',
        "space.software.training: expected one of bptt, conversion, hybrid; got 'slayer'",
    ),
    (
        "hidden_size = 32",
        'training = { type = "float", low = 0.1, high = 0.2 }',
        "space.software.training.type: expected categorical",
    ),
    (
        "hidden_size = 32",
        "finetune_epochs = -1",
        "space.software.finetune_epochs: expected an integer >= 0",
    ),
    (
        "hidden_size = 32",
        "finetune_epochs = 1.5",
        "space.software.finetune_epochs: expected an integer >= 0",
    ),
    (
        "hidden_size = 32",
        'conversion_percentile = { type = "float", low = 10, high = 99.9 }',
        "space.software.conversion_percentile: expected a number in (50, 100]",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD, ids=[b[2][:40] for b in BAD])
def test_bad_files_give_one_line_naming_file_key_and_expectation(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    text = tiny_study_text()
    assert old in text, old
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_grid_study_needs_levels_for_continuous_parameters(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(tiny_study_text(sampler="grid").replace(", grid = [0.01, 0.03]", ""))
    with pytest.raises(ConfigError, match=r"space\.software\.lr\.grid: a grid needs levels"):
        load_config(path)


def test_missing_file_names_the_shipped_studies(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file .*quickstart"):
        load_config(tmp_path / "absent.toml")


@pytest.mark.parametrize("name", ["quickstart", "training-algorithms"])
def test_shipped_studies_validate(name: str) -> None:
    assert load_config(Path(__file__).parents[1] / "studies" / f"{name}.toml").study.n_trials > 0


# (replace this, with that) in the tiny study: rules that need the registries
NAMES = [
    ('name = "digits"', 'name = "imagenet"'),
    ("hidden_size = 32", "hiden_size = 32"),
    ('{ name = "energy_uj", direction = "minimize" }', '{ name = "accuracy" }'),
]


@pytest.mark.parametrize(("old", "new"), NAMES, ids=[n[1] for n in NAMES])
def test_a_config_built_in_code_gets_the_same_one_line_error_as_a_file(
    tmp_path: Path, old: str, new: str
) -> None:
    text = tiny_study_text()
    assert old in text, old
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as from_file:
        load_config(path)
    raw: dict[str, Any] = tomllib.loads(path.read_text())
    with pytest.raises(ConfigError) as validated:
        StudyConfig.model_validate(raw)
    with pytest.raises(ConfigError) as built:
        StudyConfig(**raw)
    with pytest.raises(ConfigError) as with_path:
        StudyConfig.model_validate({**raw, "path": path})
    assert str(from_file.value) == f"{path}: {validated.value}"
    assert str(built.value) == str(validated.value)
    assert str(with_path.value) == str(from_file.value)
    assert "\n" not in str(validated.value)


def test_copies_are_checked_again_when_validated_or_overridden(tiny_study: Path) -> None:
    cfg = load_config(tiny_study)
    task = cfg.task.model_copy(update={"name": "imagenet"})
    bad = cfg.model_copy(update={"task": task})  # model_copy itself never validates
    with pytest.raises(ConfigError, match=r"^.*tiny\.toml: task\.name: expected one of"):
        StudyConfig.model_validate(bad)
    with pytest.raises(ConfigError, match=r"task\.name: expected one of"):
        bad.with_overrides(n_trials=5)
    again = cfg.with_overrides(n_trials=5)
    assert again.study.n_trials == 5 and again.path == cfg.path
    assert again.identity_hash() == cfg.identity_hash()


def test_choices_that_optuna_would_confuse_are_refused(tiny_study: Path) -> None:
    """Optuna finds a choice by equality: of [1, true], a trial given True is stored as 1."""
    text = tiny_study.read_text().replace("choices = [32, 64]", "choices = [1, true]")
    tiny_study.write_text(text)
    with pytest.raises(ConfigError, match="choices must be distinct; 1 and True are equal"):
        load_config(tiny_study)


def test_a_definition_is_read_only_and_says_how_to_change_a_copy(tiny_study: Path) -> None:
    """Assigning used to raise pydantic's "Instance is frozen" validation error; a notebook
    user learns the two ways to a changed, checked copy, and both work."""
    cfg = load_config(tiny_study)
    before = cfg.model_dump()
    for owner, name in ((cfg.study, "n_trials"), (cfg, "task"), (cfg.hardware, "preset")):
        with pytest.raises(AttributeError, match=rf"^{type(owner).__name__}\.{name}: .*read-only"):
            setattr(owner, name, 3)
    assert cfg.model_dump() == before
    data = cfg.model_dump(by_alias=True)
    data["study"]["n_trials"] = 7
    assert StudyConfig.model_validate(data).study.n_trials == 7
    assert cfg.with_overrides(n_trials=7).study.n_trials == 7


LR = 'lr = { type = "float", low = 0.005, high = 0.05, log = true, grid = [0.01, 0.03] }'
# (what replaces the lr line or the sampler line) -> the whole error after "<file>: "
EXACT = [
    (
        'lr = { type = "float", lo = 1e-4, high = 1e-2 }',
        "space.software.lr.lo: unknown key; expected one of type, class, low, high, log, step, "
        "grid",
    ),
    (
        'lr = { type = "categorical", choices = [0.1], low = 0.1 }',
        "space.software.lr.low: unknown key; expected one of type, class, choices",
    ),
    (
        'lr = { tpye = "float", low = 1e-4, high = 1e-2 }',
        "space.software.lr.tpye: unknown key; expected one of type, class, low, high, log, step, "
        "grid, choices, value",
    ),
    (
        'storage = "foo://bar"',
        "study.storage: expected a sqlite, postgresql or mysql URL; got 'foo://bar'",
    ),
]


@pytest.mark.parametrize(("new", "expected"), EXACT, ids=[e[0] for e in EXACT])
def test_error_lines_word_once_what_is_expected_and_what_came(
    tmp_path: Path, new: str, expected: str
) -> None:
    old = LR if new.startswith("lr") else 'sampler = "tpe"'
    path = tmp_path / "bad.toml"
    path.write_text(tiny_study_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {expected}"


def test_storage_option_error_names_the_url_once(tiny_study: Path) -> None:
    from nmhpo.cli import CLI_OPTION_NAMES

    expected = "storage: expected a sqlite, postgresql or mysql URL; got 'foo://bar'"
    with pytest.raises(ConfigError) as info:
        load_config(tiny_study).with_overrides(storage="foo://bar")
    assert str(info.value) == expected
    # The CLI names its option.
    with pytest.raises(ConfigError) as info:
        load_config(tiny_study).with_overrides(option_names=CLI_OPTION_NAMES, storage="foo://bar")
    assert str(info.value) == f"--{expected}"


def test_every_metric_a_trial_stores_can_be_an_objective(tmp_path: Path) -> None:
    """n_tiles was stored by every trial yet refused as an objective."""
    text = tiny_study_text().replace(
        '{ name = "energy_uj", direction = "minimize" }', '{ name = "n_tiles" }'
    )
    path = tmp_path / "tiles.toml"
    path.write_text(text)
    assert [o.name for o in load_config(path).study.objectives] == ["accuracy", "n_tiles"]


def _event_study(tmp_path: Path, encoding_line: str) -> Path:
    text = tiny_study_text().replace('name = "digits"', 'name = "events-digits"')
    text = text.replace(
        'encoding = { type = "categorical", choices = ["rate", "direct"] }', encoding_line
    )
    path = tmp_path / "events.toml"
    path.write_text(text)
    return path


def test_an_event_task_defaults_to_and_accepts_only_the_events_encoding(tmp_path: Path) -> None:
    cfg = load_config(_event_study(tmp_path, ""))
    assert cfg.fixed_software()["encoding"] == "events"
    assert "encoding" not in cfg.searched()
    assert (
        load_config(_event_study(tmp_path, 'encoding = "events"')).fixed_software()["encoding"]
        == "events"
    )
    for bad in ("rate", "latency", "delta", "direct"):
        path = _event_study(
            tmp_path, f'encoding = {{ type = "categorical", choices = ["events", "{bad}"] }}'
        )
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert str(info.value) == (
            f"{path}: space.software.encoding: the events-digits task's inputs are events; "
            f"expected 'events' (or no encoding key); got '{bad}'"
        )


def test_a_static_task_refuses_the_events_encoding(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(tiny_study_text().replace('["rate", "direct"]', '["rate", "events"]'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: space.software.encoding: 'events' needs an event task "
        "(events-digits, nmnist, shd, dvs-gesture); task digits gives static inputs"
    )


def test_an_event_task_refuses_more_steps_than_fine_time_bins(tmp_path: Path) -> None:
    path = _event_study(tmp_path, "")
    text = path.read_text().replace("n_train = 600", "n_train = 600\ntime_bins = 4")
    path.write_text(text.replace("low = 2, high = 3", "low = 2, high = 6"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: space.software.num_steps: expected at most task.time_bins (4): "
        "a step is at least one fine time bin; got 6"
    )


def test_a_task_without_image_inputs_refuses_conv_layers(tmp_path: Path) -> None:
    data = tmp_path / "shd"
    data.mkdir()
    path = _event_study(tmp_path, 'conv_layers = { type = "int", low = 0, high = 1 }')
    text = path.read_text().replace('name = "events-digits"', 'name = "shd"')
    path.write_text(text.replace("n_train = 600", 'path = "shd"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: space.software.conv_layers: expected 0: the shd task's inputs are no image; "
        "got 1"
    )


def test_training_algorithm_parameters_join_the_point_only_when_the_study_names_one(
    tmp_path: Path,
) -> None:
    """A study written before `training` existed keeps its software points (and with them
    its training seeds and cached networks); one that names it gets all three."""
    plain = tmp_path / "plain.toml"
    plain.write_text(tiny_study_text())
    assert not {"training", "finetune_epochs", "conversion_percentile", "decoder_layers"} & set(
        load_config(plain).fixed_software()
    )
    named = tmp_path / "named.toml"
    named.write_text(tiny_study_text().replace("hidden_size = 32", 'training = "hybrid"'))
    cfg = load_config(named)
    software = cfg.fixed_software()
    assert software["training"] == "hybrid"
    assert software["finetune_epochs"] == 2
    assert software["conversion_percentile"] == 99.9
    assert "decoder_layers" not in software  # another group: named on its own
    searched = tmp_path / "searched.toml"
    searched.write_text(
        tiny_study_text().replace(
            "hidden_size = 32",
            'training = { type = "categorical", choices = ["bptt", "conversion", "hybrid"] }',
        )
    )
    cfg = load_config(searched)
    assert "training" in cfg.searched()
    assert cfg.fixed_software()["finetune_epochs"] == 2


def test_a_hybrid_point_trains_for_its_relu_and_fine_tuning_epochs() -> None:
    from nmhpo.registry import total_epochs

    point = {"epochs": 4, "finetune_epochs": 3}
    assert total_epochs(point) == 4  # no training named: bptt
    assert total_epochs({**point, "training": "bptt"}) == 4
    assert total_epochs({**point, "training": "conversion"}) == 4
    assert total_epochs({**point, "training": "hybrid"}) == 7
    assert total_epochs({"epochs": 4, "training": "hybrid"}) == 6  # finetune_epochs default


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_storage_is_refused(tiny_study: Path, url: str) -> None:
    """Each connection would see its own empty database: the study could be neither
    created nor resumed."""
    with pytest.raises(ConfigError, match=r"^storage: expected a SQLite file"):
        load_config(tiny_study).with_overrides(storage=url)


def test_a_study_that_searches_nothing_runs_one_trial_only(tmp_path: Path) -> None:
    from nmhpo.cli import app
    from nmhpo.config import search_problem
    from nmhpo.study import run_study

    raw = tomllib.loads(tiny_study_text())
    raw["space"] = {"software": {"epochs": 1}}
    cfg = StudyConfig.model_validate(raw)  # readable (a report of such a study works)...
    with pytest.raises(ConfigError, match=r"^space: nothing is searched .* got n_trials = 3"):
        run_study(cfg)  # ...but running 3 copies of one point is refused
    assert search_problem(cfg.with_overrides(n_trials=1)) is None  # one fixed design is fine
    path = tmp_path / "fixed.toml"
    path.write_text(tiny_study_text().split("[space.software]")[0])
    for command in ("validate", "run"):
        result = CliRunner().invoke(app, [command, str(path)])
        assert result.exit_code == 2 and "space: nothing is searched" in result.stderr
        # nothing written: no database, and no data generated into the cache first
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.toml"]


def test_more_training_samples_than_the_task_holds_names_the_file_and_key(
    tmp_path: Path,
) -> None:
    from nmhpo.cli import app

    path = tmp_path / "big.toml"
    path.write_text(tiny_study_text().replace("n_train = 600", "n_train = 100000"))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}: task.n_train: expected at most 1079, the training samples this "
        "task's split holds; got 100000"
    )


def test_bragg_ranges_are_toml_arrays(tmp_path: Path) -> None:
    """Strict options still take [low, high] from TOML (and from a stored config's JSON)."""
    text = tiny_study_text().replace('name = "digits"\nn_train = 600', 'name = "bragg"')
    raw = tomllib.loads(text)
    raw["study"]["objectives"] = [{"name": "px_err_p75", "direction": "minimize"}]
    raw["task"]["amplitude"] = [100, 8000]
    cfg = StudyConfig.model_validate(raw)
    assert cfg.task_options().amplitude == (100.0, 8000.0)
    again = StudyConfig.model_validate(cfg.model_dump(mode="json", by_alias=True))
    assert again.identity_hash() == cfg.identity_hash()
    raw["task"]["amplitude"] = [8000, 100]
    with pytest.raises(ConfigError, match="amplitude must be"):
        StudyConfig.model_validate(raw)


def test_a_file_for_a_folder_task_and_a_folder_for_a_file_task_are_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "t10k.npz").write_bytes(b"")
    raw = tomllib.loads(tiny_study_text())
    raw["task"] = {"name": "mnist", "path": str(tmp_path / "t10k.npz")}
    with pytest.raises(ConfigError, match=r"task\.path: the mnist task reads a folder"):
        StudyConfig.model_validate(raw)
    raw["task"] = {"name": "digits", "path": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"task\.path: the digits task reads one \.npz file"):
        StudyConfig.model_validate(raw)


def test_a_data_path_may_start_from_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "study" / "s.toml"
    path.parent.mkdir()
    path.write_text(tiny_study_text().replace("n_train = 600", 'path = "~/mine.npz"'))
    assert load_config(path).data_path() == tmp_path / "mine.npz"
