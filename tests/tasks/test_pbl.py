from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pydantic import ValidationError

from nmhpo.errors import TaskError
from nmhpo.tasks._pbl import (
    CP,
    DZ,
    INPUT_NAMES,
    L_MODEL,
    N_LEVELS,
    PBL,
    Z_I,
    PblOptions,
    Z,
    _draw,
    _mix_step,
    _rotate,
    _step,
    build,
    generate,
    normalisation,
    score,
    simulate,
)

SHORT = PblOptions(max_lead_h=6)  # 3- and 6-hour runs: fast, still through the morning


def _column_sum(field: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Mass-weighted column integral, sum of rho dz phi, per column."""
    return (rho * DZ[:, None] * field).sum(axis=0)


def _stable_columns(n: int) -> tuple[object, np.ndarray]:
    """``n`` identical columns at sunrise: theta 290 K + 5 K/km, q 5 g/kg, 5 m/s westerly
    equal to the geostrophic wind, so only the surface forcing makes them differ."""
    site, _ = _draw(n, np.random.default_rng(0))
    site = dataclasses.replace(
        site, z0=np.full(n, 0.1), ug=np.full(n, 5.0), vg=np.zeros(n), ps=np.full(n, 970.0)
    )
    state = np.zeros((L_MODEL, 4, n))
    state[:, 0] = 290.0 + 5e-3 * Z[:, None]
    state[:, 1] = 5e-3
    state[:, 2] = 5.0
    return site, state


# ------------------------------------------------------------------------ generation


def test_generate_shapes_dtypes_and_ranges() -> None:
    x, y = generate(300, seed=1)
    assert x.shape == (300, len(INPUT_NAMES)) == (300, 16) and x.dtype == np.float32
    assert y.shape == (300, 4 * N_LEVELS) == (300, 68) and y.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.isfinite(y).all()
    # The fixed normalisation fits the generator: standardised outputs near N(0, 1).
    assert np.abs(y.mean(axis=0)).max() < 0.5
    assert 0.3 < y.std(axis=0).min() and y.std(axis=0).max() < 1.6
    # Few inputs pile up at the clipping edges (sw_down is 0 at night by design).
    edge = ((x == 0.0) | (x == 1.0)).mean(axis=0)
    assert edge[INPUT_NAMES.index("sw_down")] > 0.2
    assert np.delete(edge, INPUT_NAMES.index("sw_down")).max() < 0.02


def test_simulated_profiles_are_physical() -> None:
    x, prof = simulate(300, seed=2)
    u, v, t, qv = prof[:, 0], prof[:, 1], prof[:, 2], prof[:, 3]
    assert prof.shape == (300, 4, N_LEVELS)
    assert 220.0 < t.min() and t.max() < 330.0
    assert qv.min() > 0.0 and qv.max() < 0.03
    assert np.abs(u).max() < 40.0 and np.abs(v).max() < 40.0
    # Temperature falls with height on average (about 6-10 K/km in the lowest 2 km).
    lapse = (t[:, 0] - t[:, -1]).mean() / (Z[N_LEVELS - 1] - Z[0]) * 1000.0
    assert 3.0 < lapse < 10.0
    # Strongly heated columns have deeper boundary layers than cooling ones.
    heat, pblh = (
        x[:, INPUT_NAMES.index("sensible_heat_flux")],
        x[:, INPUT_NAMES.index("pbl_height")],
    )
    assert np.median(pblh[heat > 200.0]) > np.median(pblh[heat < 0.0]) + 400.0
    # The surface-layer diagnostics follow the lowest model level.
    t2 = x[:, INPUT_NAMES.index("t2")]
    assert np.corrcoef(t2, t[:, 0])[0, 1] > 0.98


def test_generation_is_deterministic_for_a_seed() -> None:
    a, b = generate(40, seed=5, options=SHORT), generate(40, seed=5, options=SHORT)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = generate(40, seed=6, options=SHORT)
    assert not np.allclose(a[1], c[1])


def test_build_fills_meta_and_keeps_val_when_train_grows() -> None:
    small = build(PblOptions(n_train=30, n_val=12, n_test=10, max_lead_h=6), seed=0)
    big = build(PblOptions(n_train=60, n_val=12, n_test=10, max_lead_h=6), seed=0)
    assert small.x_train.shape == (30, 16) and small.y_test.shape == (10, 68)
    np.testing.assert_array_equal(small.x_val, big.x_val)
    np.testing.assert_array_equal(small.y_test, big.y_test)
    assert not np.allclose(small.x_val[:10], small.x_test)
    norm = normalisation()
    for key in ("y_mean", "y_std", "x_low", "x_high", "z_m"):
        np.testing.assert_array_equal(small.meta[key], norm[key])
    assert small.meta["y_mean"].shape == small.meta["y_std"].shape == (68,)
    assert (small.meta["y_std"] > 0).all()


def test_options_are_validated() -> None:
    assert PblOptions().n_train == 4000 and PblOptions().dt_s == 180
    with pytest.raises(ValidationError, match="10800"):
        PblOptions(dt_s=700)
    with pytest.raises(ValidationError):
        PblOptions(max_lead_h=10)
    with pytest.raises(ValidationError):
        PblOptions(n_levels=20)


def test_batched_step_equals_one_column_at_a_time() -> None:
    site, state = _draw(5, np.random.default_rng(3))
    wth0 = np.array([0.2, 0.0, -0.02, 0.1, 0.3])
    wq0 = np.array([5e-5, 0.0, -1e-6, 1e-4, 2e-5])
    batch, _ = _step(state, wth0, wq0, site, 180.0, PblOptions())
    for i in range(5):
        one, _ = _step(state[..., i : i + 1], wth0[i : i + 1], wq0[i : i + 1],
                       site.take(slice(i, i + 1)), 180.0, PblOptions())  # fmt: skip
        np.testing.assert_allclose(batch[..., i : i + 1], one, rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- physics


def test_mixing_conserves_heat_and_vapour_at_zero_surface_flux() -> None:
    rng = np.random.default_rng(4)
    site, state = _draw(50, rng)
    k = np.zeros((L_MODEL + 1, 50))
    k[1:-1] = rng.uniform(0.1, 300.0, (L_MODEL - 1, 50))
    gamma = np.zeros_like(k)
    gamma[1:8] = rng.uniform(0.0, 1e-3, (7, 50))  # counter-gradient term inside a PBL
    zero = np.zeros(50)
    new = state
    for _ in range(20):
        new = _mix_step(new, k, k, gamma, zero, zero, zero, site.rho, site.rho_i, 600.0)
    assert np.abs(new[:, 0] - state[:, 0]).max() > 0.1  # it really mixed
    np.testing.assert_allclose(
        _column_sum(new[:, 0], site.rho), _column_sum(state[:, 0], site.rho), rtol=1e-13
    )
    np.testing.assert_allclose(
        _column_sum(new[:, 1], site.rho), _column_sum(state[:, 1], site.rho), rtol=1e-12
    )


def test_full_step_without_surface_fluxes_conserves_heat() -> None:
    """Turbulence, Coriolis and mixing together: no source, no heat or vapour change."""
    site, state = _draw(40, np.random.default_rng(5))
    zero = np.zeros(40)
    new = state
    for _ in range(40):
        new, _ = _step(new, zero, zero, site, 180.0, PblOptions())
    assert np.abs(new[:, 0] - state[:, 0]).max() > 0.05
    for var in (0, 1):
        np.testing.assert_allclose(
            _column_sum(new[:, var], site.rho), _column_sum(state[:, var], site.rho), rtol=1e-12
        )


def test_surface_heat_flux_adds_exactly_its_energy() -> None:
    site, state = _stable_columns(3)
    heat_w_m2 = np.array([50.0, 200.0, 400.0])
    wth0 = heat_w_m2 / (site.rho_i[0] * CP)
    new, dt, steps = state, 180.0, 40
    for _ in range(steps):
        new, _ = _step(new, wth0, np.zeros(3), site, dt, PblOptions())
    gained_j = CP * (_column_sum(new[:, 0], site.rho) - _column_sum(state[:, 0], site.rho))
    np.testing.assert_allclose(gained_j, heat_w_m2 * dt * steps, rtol=1e-9)


def test_surface_heating_warms_the_bottom_and_deepens_a_mixed_layer() -> None:
    site, state = _stable_columns(2)
    wth0 = np.array([0.0, 300.0]) / (site.rho_i[0] * CP)  # none vs 300 W/m2
    new, turb = state, None
    for _ in range(80):  # 4 hours
        new, turb = _step(new, wth0, np.zeros(2), site, 180.0, PblOptions())
    assert turb is not None
    theta = new[:, 0]
    assert theta[0, 1] - theta[0, 0] > 2.0  # lowest level warmer with heating
    assert turb.h[1] > 600.0 and turb.h[0] < 300.0  # a convective PBL grew
    mixed = Z < 0.7 * turb.h[1]
    assert np.ptp(theta[mixed, 1]) < 0.6  # well mixed below h (was 5 K/km)
    assert np.ptp(theta[mixed, 0]) > 1.0  # the unheated column stays stratified
    free = Z > 2500.0  # above the mixed layer and below the lid
    np.testing.assert_allclose(theta[free][:-1], state[free][:-1, 0], atol=1e-3)


def test_momentum_mixing_creates_no_momentum() -> None:
    rng = np.random.default_rng(6)
    site, state = _draw(30, rng)
    k = np.zeros((L_MODEL + 1, 30))
    k[1:-1] = rng.uniform(1.0, 200.0, (L_MODEL - 1, 30))
    zero, no_gamma = np.zeros(30), np.zeros_like(k)
    free = _mix_step(state, k, k, no_gamma, zero, zero, zero, site.rho, site.rho_i, 900.0)
    assert np.abs(free[:, 2] - state[:, 2]).max() > 0.5  # it really mixed
    for var in (2, 3):
        np.testing.assert_allclose(
            _column_sum(free[:, var], site.rho), _column_sum(state[:, var], site.rho), rtol=1e-12
        )
    # With surface drag the column only loses momentum, never gains or reverses it.
    drag = np.full(30, 0.05)
    dragged = _mix_step(state, k, k, no_gamma, zero, zero, drag, site.rho, site.rho_i, 900.0)
    before = _column_sum(state[:, 2], site.rho)
    after = _column_sum(dragged[:, 2], site.rho)
    assert (np.abs(after) < np.abs(before)).all() and (np.sign(after) == np.sign(before)).all()


def test_coriolis_rotation_keeps_geostrophic_wind_and_ageostrophic_speed() -> None:
    site, state = _draw(10, np.random.default_rng(7))
    rotated = _rotate(state, site.ug, site.vg, 3600.0)
    before = np.hypot(state[:, 2] - site.ug, state[:, 3] - site.vg)
    after = np.hypot(rotated[:, 2] - site.ug, rotated[:, 3] - site.vg)
    np.testing.assert_allclose(after, before, rtol=1e-12)
    assert np.abs(rotated[:, 2] - state[:, 2]).max() > 0.1  # it turned
    steady = state.copy()
    steady[:, 2], steady[:, 3] = site.ug, site.vg
    np.testing.assert_allclose(_rotate(steady, site.ug, site.vg, 3600.0), steady, atol=1e-12)


def test_model_levels_include_the_17_emulated_ones() -> None:
    assert Z[:N_LEVELS].tolist() == normalisation()["z_m"].tolist()
    assert Z_I[0] == 0.0 and (np.diff(Z_I) > 0).all() and Z[-1] > 3000.0


# --------------------------------------------------------------------------- metrics


def _targets(n: int = 50) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(8)
    return rng.normal(size=(n, 68)), normalisation()


def test_score_of_a_perfect_prediction() -> None:
    y, meta = _targets()
    metrics = score(y, y.copy(), meta)
    assert set(PBL.metrics) <= set(metrics)
    for key, value in metrics.items():
        assert value == pytest.approx(1.0 if key.startswith("r2") else 0.0, abs=1e-12), key


def test_score_of_a_constant_error_in_physical_units() -> None:
    y, meta = _targets()
    offsets = {"u": 1.0, "v": -2.0, "t": 0.5, "qv": 1e-4}  # m/s, m/s, K, kg/kg
    physical = np.concatenate([np.full(N_LEVELS, d) for d in offsets.values()])
    pred = y + physical / meta["y_std"]
    metrics = score(y, pred, meta)
    assert metrics["mae_u"] == pytest.approx(1.0)
    assert metrics["mae_v"] == pytest.approx(2.0)
    assert metrics["mae_t"] == pytest.approx(0.5)
    assert metrics["mae_qv"] == pytest.approx(0.1)  # g/kg
    assert metrics["mae_t_l1"] == pytest.approx(0.5)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(physical) / meta["y_std"]))
    # A bias of b lowers R^2 by b^2 / variance of the truth.
    t_true = y[:, 2 * N_LEVELS] * meta["y_std"][2 * N_LEVELS] + meta["y_mean"][2 * N_LEVELS]
    assert metrics["r2_t_l1"] == pytest.approx(1.0 - 0.25 / t_true.var())
    assert metrics["r2"] < 1.0


def test_score_rejects_bad_shapes_and_missing_meta() -> None:
    y, meta = _targets()
    with pytest.raises(TaskError, match="68"):
        score(y[:, :60], y[:, :60], meta)
    with pytest.raises(TaskError, match="y_mean"):
        score(y, y, {})


def test_task_info() -> None:
    assert PBL.name == "pbl" and PBL.kind == "regression" and PBL.options is PblOptions
    assert PBL.metrics["r2"] == "maximize" and PBL.metrics["mae_qv"] == "minimize"
    assert {f"r2_{v}" for v in ("u", "v", "t", "qv")} <= set(PBL.metrics)
