"""How the `pbl` task's synthetic columns compare with real boundary layers.

The reference data (WRF-YSU at Logan, Kansas; Wang et al. 2019, GMD) are not obtainable, so
this compares the generator with the observational proxies in shared/data/pbl/ (README there):

- ARM SGP 2012 surface record (hourly 04-17 LT): sensible and latent heat flux, 2-m
  temperature and vapour, 10-m wind, against the synthetic inputs at the same local hours
  (the generator samples 05, 08, 11, 14, 17, ... LT), all year and in summer (JJA).
- ARM SGP 2012 radiosondes (05, 11, 17 LT) interpolated to the 17 emulated levels: near-
  surface stability theta(200 m) - theta(25 m), mixed-layer depth by the parcel method
  (first level where theta exceeds theta(25 m) + 0.5 K) applied identically to both, the
  lapse rate above 1 km, and the mean wind speed and vapour profiles.
- ERA5 NE-Pacific column (NetCDF-4): read only when h5py is installed; a marine
  stratocumulus regime, so its figures are context, not a target.

Writes benchmarks/results/pbl_real_check.json.
Run: .venv/bin/python benchmarks/check_pbl_real.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.tasks._pbl import (  # noqa: E402
    CP,
    H_SCALE,
    INPUT_NAMES,
    R_D,
    Z_LEVELS_M,
    PblOptions,
    _qsat,
    _run,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbl"
N_SYNTHETIC = 6000
SEED = 0
PS_HPA = 970.0  # typical SGP surface pressure, to turn sounding theta and RH into T and q
PROFILE_LEVELS_M = (25.0, 260.0, 530.0, 1030.0, 1880.0)
JJA = (6, 7, 8)


def stats(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0}
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    return {
        "n": int(v.size),
        "mean": round(float(v.mean()), 4),
        "p10": round(float(p10), 4),
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "min": round(float(v.min()), 4),
        "max": round(float(v.max()), 4),
    }


def pair(arm: np.ndarray, synthetic: np.ndarray) -> dict[str, Any]:
    return {"arm": stats(arm), "synthetic": stats(synthetic)}


def mixed_layer_depth(theta: np.ndarray, excess_k: float = 0.5) -> np.ndarray:
    """Parcel-method depth (m) on the 17 levels: where theta first exceeds theta(25 m) plus
    ``excess_k``, interpolated; the top level (1,880 m) when it never does. theta (n, 17)."""
    above = theta > theta[:, :1] + excess_k
    above[:, 0] = False
    none = ~above.any(axis=1)
    k = np.maximum(np.argmax(above, axis=1), 1)
    rows = np.arange(len(theta))
    lo, hi = theta[rows, k - 1], theta[rows, k]
    target = theta[:, 0] + excess_k
    frac = np.clip((target - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)
    depth = Z_LEVELS_M[k - 1] + frac * (Z_LEVELS_M[k] - Z_LEVELS_M[k - 1])
    return np.where(none, Z_LEVELS_M[-1], depth)


def soundings_on_levels(path: Path) -> dict[str, np.ndarray]:
    """Each sounding's theta, wind speed and vapour at the 17 levels, with its hour and month."""
    mat = scipy.io.loadmat(path)
    time_lt = mat["time"].ravel().astype(np.int64)
    names = ("theta", "rh", "u", "v")
    out = {n: np.full((len(time_lt), len(Z_LEVELS_M)), np.nan) for n in names}
    for i in range(len(time_lt)):
        z = mat["height"][i]
        for name in names:
            values = mat[name][i]
            ok = np.isfinite(z) & np.isfinite(values)
            if ok.sum() >= 10 and z[ok].max() >= Z_LEVELS_M[-1]:
                out[name][i] = np.interp(Z_LEVELS_M, z[ok], values[ok])
    pressure = PS_HPA * np.exp(-Z_LEVELS_M / H_SCALE)
    temperature = out["theta"] * (pressure / 1000.0) ** (R_D / CP)
    return {
        "theta": out["theta"],
        "speed": np.hypot(out["u"], out["v"]),
        "q": out["rh"] * _qsat(temperature, pressure),
        "hour": time_lt % 100,
        "month": (time_lt // 10_000) % 100,
    }


def compare_surface(path: Path, synth: Any) -> dict[str, Any]:
    mat = scipy.io.loadmat(path)
    month = (mat["date"].ravel().astype(np.int64) // 100) % 100
    arm = {
        "sensible_heat_flux": mat["sh"],
        "latent_heat_flux": mat["lh"],
        "t2": mat["t"],
        "q2": mat["rh"] / 100.0 * _qsat(mat["t"], mat["ps"]),
        "wind10_speed": np.hypot(mat["u"], mat["v"]),
    }
    x = synth.x
    ours = {
        "sensible_heat_flux": x[:, INPUT_NAMES.index("sensible_heat_flux")],
        "latent_heat_flux": x[:, INPUT_NAMES.index("latent_heat_flux")],
        "t2": x[:, INPUT_NAMES.index("t2")],
        "q2": x[:, INPUT_NAMES.index("q2")],
        "wind10_speed": np.hypot(x[:, INPUT_NAMES.index("u10")], x[:, INPUT_NAMES.index("v10")]),
    }
    synth_month = _month_of_doy(synth.doy)
    by_hour: dict[str, Any] = {}
    for hour in (5, 8, 11, 14, 17):
        col = hour - 4  # the ARM record's columns are 04, 05, ..., 17 LT
        sel = np.isclose(synth.hour, hour)
        by_hour[f"{hour:02d}LT"] = {k: pair(arm[k][:, col], ours[k][sel]) for k in arm}
    summer: dict[str, Any] = {}
    for hour in (11, 14):
        col = hour - 4
        arm_sel = np.isin(month, JJA)
        sel = np.isclose(synth.hour, hour) & np.isin(synth_month, JJA)
        summer[f"{hour:02d}LT"] = {
            k: pair(arm[k][arm_sel, col], ours[k][sel])
            for k in ("sensible_heat_flux", "latent_heat_flux", "t2", "q2")
        }
    return {"all_year": by_hour, "summer_jja": summer}


def compare_soundings(path: Path, synth: Any) -> dict[str, Any]:
    snd = soundings_on_levels(path)
    z = Z_LEVELS_M
    i200 = np.interp(200.0, z, np.arange(len(z)))  # fractional index of 200 m
    lo = int(np.floor(i200))

    def theta_200(theta: np.ndarray) -> np.ndarray:
        return theta[:, lo] + (i200 - lo) * (theta[:, lo + 1] - theta[:, lo])

    k1030, k1880 = int(np.flatnonzero(z == 1030.0)[0]), len(z) - 1
    pblh = synth.x[:, INPUT_NAMES.index("pbl_height")]
    synth_speed = np.hypot(synth.profiles[:, 0], synth.profiles[:, 1])
    result: dict[str, Any] = {}
    for hour in (5, 11, 17):
        arm_sel = (snd["hour"] == hour) & np.isfinite(snd["theta"]).all(axis=1)
        sel = np.isclose(synth.hour, hour)
        th_a, th_s = snd["theta"][arm_sel], synth.theta[sel]
        entry: dict[str, Any] = {
            "theta_200m_minus_25m_K": pair(
                theta_200(th_a) - th_a[:, 0], theta_200(th_s) - th_s[:, 0]
            ),
            "mixed_layer_depth_parcel_m": pair(mixed_layer_depth(th_a), mixed_layer_depth(th_s)),
            "synthetic_ysu_pbl_height_m": stats(pblh[sel]),
            "theta_lapse_1030_1880m_K_per_km": pair(
                (th_a[:, k1880] - th_a[:, k1030]) / 0.85, (th_s[:, k1880] - th_s[:, k1030]) / 0.85
            ),
        }
        for level in PROFILE_LEVELS_M:
            k = int(np.flatnonzero(z == level)[0])
            entry[f"wind_speed_{int(level)}m"] = pair(
                snd["speed"][arm_sel, k], synth_speed[sel, k]
            )
            entry[f"qv_{int(level)}m_g_per_kg"] = pair(
                1000.0 * snd["q"][arm_sel, k], 1000.0 * synth.profiles[sel, 3, k]
            )
        result[f"{hour:02d}LT"] = entry
    return result


def compare_era5(path: Path) -> dict[str, Any]:
    """ERA5's column when it can be read: NetCDF-3 through scipy, else h5py if installed."""
    try:
        with scipy.io.netcdf_file(path, "r", mmap=False) as nc:
            variables = {k: np.array(v.data) for k, v in nc.variables.items()}
    except TypeError:  # scipy's message for "not a valid NetCDF 3 file"
        try:
            import h5py
        except ImportError:
            return {
                "status": "skipped",
                "reason": "NetCDF-4/HDF5 file; scipy reads only NetCDF-3 and h5py is not "
                "installed in this environment",
            }
        with h5py.File(path, "r") as h5:
            variables = {
                k: np.array(h5[k])
                for k in ("shf", "lhf", "u", "v", "z_mid", "rt")
                if k in h5 and isinstance(h5[k], h5py.Dataset)
            }
    out: dict[str, Any] = {"status": "read", "variables": sorted(variables)}
    # ERA5 accumulations: J/m2 per hour, downward positive -> upward W/m2 (README).
    for name in ("shf", "lhf"):
        if name in variables:
            out[f"{name}_up_w_m2"] = stats(variables[name] / -3600.0)
    if {"u", "v", "z_mid"} <= variables.keys():
        speed = np.hypot(variables["u"], variables["v"])
        levels = np.asarray(variables["z_mid"], dtype=float).ravel()
        out["wind_speed_by_level"] = {
            f"{lev:.0f}m": stats(speed[:, i]) for i, lev in enumerate(levels) if lev <= 2000.0
        }
    return out


def _month_of_doy(doy: np.ndarray) -> np.ndarray:
    ends = np.cumsum([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])  # 2012 is a leap year
    return np.searchsorted(ends, np.floor(doy), side="left") + 1


def main() -> int:
    files = {
        "soundings": DATA / "arm_sgp_2012_soundings.mat",
        "surface": DATA / "arm_sgp_2012_surface_LT04-17.mat",
        "era5": DATA / "era5_column_2016_NEPacific.nc",
    }
    missing = [str(p) for k, p in files.items() if k != "era5" and not p.is_file()]
    if missing:
        sys.stderr.write(
            f"error: real PBL data not found: {', '.join(missing)}\n"
            f"expected the shared data folder at {DATA}\n"
        )
        return 2
    options = PblOptions()
    start = time.perf_counter()
    synth = _run(N_SYNTHETIC, SEED, options)
    seconds = time.perf_counter() - start
    payload = {
        "synthetic": {
            "n_columns": N_SYNTHETIC,
            "seed": SEED,
            "options": options.model_dump(),
            "generation_s": round(seconds, 2),
            "inputs": {name: stats(synth.x[:, i]) for i, name in enumerate(INPUT_NAMES)},
        },
        "surface_arm_vs_synthetic": compare_surface(files["surface"], synth),
        "soundings_arm_vs_synthetic": compare_soundings(files["soundings"], synth),
        "era5": compare_era5(files["era5"])
        if files["era5"].is_file()
        else {"status": "skipped", "reason": "file not found"},
        "notes": [
            "ARM observations include advection, clouds and radiation the single-column model "
            "lacks; the reference targets are WRF-YSU output, not observations.",
            "Sounding T and q use a fixed 970 hPa surface pressure and an isothermal "
            "atmosphere for pressure with height.",
            "Mixed-layer depth uses the same parcel rule on the same 17 levels for both; "
            "1,880 m means 'at or above the top emulated level'.",
            "Synthetic hours are 05 (24-h lead), 08, 11, 14, 17 LT; ARM surface hours match.",
        ],
    }
    path = write_result("pbl_real_check", payload)
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
