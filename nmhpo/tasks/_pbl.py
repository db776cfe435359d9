"""Planetary-boundary-layer emulation: 16 surface scalars -> U, V, T, QV on the lowest 17 levels.

The task mirrors Wang, Balaprakash and Kotamarthi (2019), "Fast domain-aware neural network
emulation of a planetary boundary layer parameterization in a numerical weather forecast
model", GMD 12:4261 (doi:10.5194/gmd-12-4261-2019): a network learns what WRF's YSU scheme
makes of one grid column (Logan, Kansas), from the 16 surface inputs they used. Their WRF
output is not obtainable here, so the data come from a small single-column model written to
the recipe in ``shared/data/pbl/README.md``; it is YSU-like, not YSU:

- 23 levels from 25 m to 3.5 km (the lowest 17, up to 1,880 m, are emulated; the levels above
  give daytime boundary layers room to grow past 2 km, as WRF's 38 levels do);
  prognostic potential temperature, water vapour and wind in flux form, weighted by a fixed
  hydrostatic density profile, so mixing conserves heat and momentum to round-off.
- Each column starts at 05 local solar time from a parametric sounding (lapse rate 2-8 K/km,
  100-300 m nocturnal inversion, RH 40-90 % falling with height, geostrophic wind with a log
  layer) and runs 3, 6, ..., 24 h (``max_lead_h``) under a diurnal surface forcing: sensible
  and latent heat from net radiation split by a Bowen ratio tied to soil moisture; Monin-
  Obukhov surface layer (Businger-Dyer); f = 1e-4 1/s; a uniform 1.5 K/day radiative
  cooling (not in the README's recipe) so a day of heating does not all accumulate.
- YSU pieces: PBL height where the bulk Richardson number crosses 0 (unstable, with thermal
  excess 6.8 w'thv'/ws) or 0.25 (stable); K-profile K = kappa ws z (1 - z/h)^2 with Hong et
  al. (2006, MWR 134:2318) Prandtl profile, counter-gradient term for heat, explicit
  entrainment flux -0.15 (w'thv')0 at h; local K = l^2 |dU/dz| f(Ri) above h; implicit
  (backward Euler) tridiagonal diffusion, exact rotation for Coriolis.

Outputs are 68 values: U, V (m/s), T (K) and QV (kg/kg) at the 17 levels, in that order
(the reference's 85 also hold W, which is ~0 in one dimension and unpredictable there). The
reference's errors are in physical units, so `score` reports them that way.

Users with real WRF data pass an .npz (``[task] path = "wrf.npz"``) holding x_train, y_train,
x_val, y_val (optionally x_test, y_test) with x scaled to [0, 1] and y laid out as above and
standardised, plus meta_y_mean and meta_y_std (68 values each) so the metrics can go back to
physical units. The reference's CSVs order their 85 outputs vy, ux, wz, tk, qv: drop wz and
reorder to U, V, T, QV.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import Field, field_validator

from nmhpo.errors import TaskError
from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, generated_splits, r2_per_output

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------ constants

G = 9.81  # m s-2
KAPPA = 0.4  # von Karman
R_D = 287.04  # J kg-1 K-1
CP = 1004.6  # J kg-1 K-1
L_V = 2.5e6  # J kg-1
SIGMA = 5.67e-8  # W m-2 K-4
CORIOLIS = 1.0e-4  # s-1, README (~ 43 N)
ALBEDO = 0.2  # grassland / cropland
T_REF = 285.0  # K, temperature of the fixed density profile
H_SCALE = R_D * T_REF / G  # m, density scale height
YSU_B = 6.8  # YSU counter-gradient / thermal-excess coefficient
K_MIN = 0.05  # m2 s-1, background diffusivity (YSU keeps a small minimum too)
K_MAX = 1000.0  # m2 s-1
THETA_STAR_MAX = 0.2  # K; a stable surface cannot carry a larger flux than u* times this
DEW_MAX = 0.02  # dew flux at most u* times this fraction of the lowest level's vapour
GUST_BETA = 1.2  # convective gustiness, U_eff^2 = U^2 + (beta w*)^2 (Beljaars 1995)
GUST_ZI = 1000.0  # m, boundary-layer depth assumed for the gustiness

#: Heights of the emulated levels (m above ground), README's 17 levels, surface to ~2 km.
Z_LEVELS_M = np.array(
    [25, 75, 130, 190, 260, 340, 430, 530, 640, 760, 890, 1030, 1180, 1340, 1510, 1690, 1880],
    dtype=float,
)
N_LEVELS = len(Z_LEVELS_M)
# Model levels: the emulated ones plus 6 above, so afternoon PBLs are not capped at 2 km.
Z = np.concatenate([Z_LEVELS_M, [2090, 2320, 2580, 2870, 3190, 3540]])
L_MODEL = len(Z)
Z_I = np.concatenate([[0.0], 0.5 * (Z[1:] + Z[:-1]), [Z[-1] + 0.5 * (Z[-1] - Z[-2])]])
DZ = np.diff(Z_I)  # layer thicknesses (L,)
DZ_C = np.concatenate([[1.0], np.diff(Z), [1.0]])  # level spacing at interfaces (L+1,)
_ZI32 = Z_I[1:-1, None].astype(np.float32)
_INV_DZ_32 = (1.0 / DZ_C[1:-1, None]).astype(np.float32)
_INV_DZ2_32 = _INV_DZ_32 * _INV_DZ_32

INPUT_NAMES: tuple[str, ...] = (
    "q2",
    "t2",
    "u10",
    "v10",
    "ground_heat_flux",
    "sw_down",
    "lw_down",
    "pbl_height",
    "sensible_heat_flux",
    "latent_heat_flux",
    "ustar",
    "skin_temperature",
    "deep_soil_temperature",
    "soil_moisture",
    "ug",
    "vg",
)
#: Fixed physical ranges mapped to [0, 1] (values outside are clipped), in INPUT_NAMES'
#: order and units kg/kg, K, m/s, m/s, W/m2 (into the ground), W/m2, W/m2, m, W/m2 (up),
#: W/m2 (up), m/s, K, K, m3/m3, m/s, m/s. They hold everything the generator makes with its
#: defaults, with margin, and the bulk of the ARM SGP 2012 surface record.
INPUT_RANGES = np.array(
    [
        [0.0, 0.03],
        [240.0, 320.0],
        [-20.0, 20.0],
        [-20.0, 20.0],
        [-100.0, 150.0],
        [0.0, 1100.0],
        [100.0, 600.0],
        [0.0, 4000.0],
        [-100.0, 600.0],
        [-50.0, 700.0],
        [0.0, 1.5],
        [230.0, 340.0],
        [260.0, 310.0],
        [0.0, 0.5],
        [-20.0, 20.0],
        [-20.0, 20.0],
    ]
)
VARIABLES: tuple[str, ...] = ("u", "v", "t", "qv")
OUTPUT_NAMES: tuple[str, ...] = tuple(f"{var}_{int(z)}m" for var in VARIABLES for z in Z_LEVELS_M)


# -------------------------------------------------------------------------------- options


class PblOptions(TaskOptions):
    """Sizes are for search trials on 2 cores (6,000 columns take ~5 s); the paper's data
    set has ~64,000 samples. The other knobs are the single-column model's.

    Attributes:
        dt_s: time step (s); must divide 3 h. The README suggests 60-180 s.
        max_lead_h: samples are taken 3, 6, ..., max_lead_h hours after the 05 LT start,
            uniformly, so 24 covers the 3-hourly diurnal cycle once.
        entrainment: entrainment flux at the PBL top as a fraction of the surface buoyancy
            flux (YSU: 0.15).
        ri_cr_stable: critical bulk Richardson number of the stable PBL height (YSU: 0.25).
        mixing_length_m: asymptotic mixing length above the PBL, lambda (README: 30-150 m).
        radiative_cooling_k_per_day: clear-air longwave cooling of the whole column, which
            balances part of the daytime surface heating, as in the real atmosphere (about
            1-2 K/day); 0 gives the README's pure mixing model.
    """

    n_train: int = Field(default=4000, ge=1)
    n_val: int = Field(default=1000, ge=1)
    n_test: int = Field(default=1000, ge=1)
    dt_s: int = Field(default=180, ge=30, le=900)
    max_lead_h: int = Field(default=24, ge=3, le=72, multiple_of=3)
    entrainment: float = Field(default=0.15, ge=0.0, le=0.5)
    ri_cr_stable: float = Field(default=0.25, gt=0.0, le=1.0)
    mixing_length_m: float = Field(default=30.0, gt=0.0, le=500.0)
    radiative_cooling_k_per_day: float = Field(default=1.5, ge=0.0, le=5.0)

    @field_validator("dt_s")
    @classmethod
    def _divides_three_hours(cls, value: int) -> int:
        if 3 * 3600 % value:
            raise ValueError(f"must divide 10800 s (3 h) evenly; got {value}")
        return value


# ------------------------------------------------------------------------ thermodynamics


def _qsat(t_k: np.ndarray, p_hpa: np.ndarray) -> np.ndarray:
    """Saturation mixing ratio (kg/kg) over water, Bolton (1980)."""
    es = 6.112 * np.exp(17.67 * (t_k - 273.15) / (t_k - 29.65))
    return 0.622 * es / np.maximum(p_hpa - 0.378 * es, 1.0)


def _pressure(z: np.ndarray, ps_hpa: np.ndarray) -> np.ndarray:
    """Hydrostatic pressure (hPa) of an isothermal T_REF atmosphere; z (L,), ps (n,) -> (L, n)."""
    return ps_hpa[None, :] * np.exp(-z[:, None] / H_SCALE)


def _exner(p_hpa: np.ndarray) -> np.ndarray:
    return (p_hpa / 1000.0) ** (R_D / CP)


def _density(z: np.ndarray, ps_hpa: np.ndarray) -> np.ndarray:
    """Fixed air density (kg/m3) per column; the model's mass weights, (len(z), n)."""
    return _pressure(z, ps_hpa) * 100.0 / (R_D * T_REF)


# ------------------------------------------------------------------------- surface layer


def _psi_m(zeta: np.ndarray) -> np.ndarray:
    """Integrated stability function for momentum: Paulson (1970) for zeta < 0, Businger-
    Dyer -5 zeta for zeta > 0, capped at zeta = 1 as is usual for very stable nights."""
    x = (1.0 - 16.0 * np.clip(zeta, -10.0, 0.0)) ** 0.25
    unstable = 2 * np.log((1 + x) / 2) + np.log((1 + x * x) / 2) - 2 * np.arctan(x) + np.pi / 2
    return unstable - 5.0 * np.clip(zeta, 0.0, 1.0)  # one of the two terms is zero


def _psi_h(zeta: np.ndarray) -> np.ndarray:
    """Integrated stability function for heat and moisture, as `_psi_m`."""
    x2 = np.sqrt(1.0 - 16.0 * np.clip(zeta, -10.0, 0.0))
    return 2 * np.log((1 + x2) / 2) - 5.0 * np.clip(zeta, 0.0, 1.0)


@dataclass(frozen=True)
class _SurfaceLayer:
    ustar: np.ndarray  # m/s
    inv_l: np.ndarray  # 1/m, inverse Obukhov length
    wth0: np.ndarray  # K m/s, after the stable flux limit
    wq0: np.ndarray  # kg/kg m/s, after the dew limit
    speed: np.ndarray  # m/s, lowest-level wind with convective gustiness


def _surface_layer(
    speed1: np.ndarray,
    wth0: np.ndarray,
    wq0: np.ndarray,
    theta1: np.ndarray,
    q1: np.ndarray,
    z0: np.ndarray,
) -> _SurfaceLayer:
    """Monin-Obukhov similarity between the surface and the lowest level (25 m), from its
    wind and the prescribed surface fluxes, by fixed-point iteration.

    A stable surface's heat loss and dew are capped by what its turbulence can carry
    (|theta*| <= THETA_STAR_MAX, |q*| <= DEW_MAX q1), and light winds get convective
    gustiness, so calm nights and calm afternoons keep finite surface gradients.
    """
    z1 = Z[0]
    thv1 = theta1 * (1.0 + 0.61 * q1)
    log_z = np.log(z1 / z0)
    wstar3 = G / thv1 * np.maximum(wth0 + 0.61 * theta1 * wq0, 0.0) * GUST_ZI
    speed = np.sqrt(speed1 * speed1 + GUST_BETA**2 * np.cbrt(wstar3) ** 2)
    ustar = KAPPA * speed / log_z
    for _ in range(4):
        wth0 = np.maximum(wth0, -THETA_STAR_MAX * ustar)
        wq0 = np.maximum(wq0, -DEW_MAX * q1 * ustar)
        inv_l = -KAPPA * G * (wth0 + 0.61 * theta1 * wq0) / (thv1 * ustar**3)
        ustar = np.maximum(KAPPA * speed / (log_z - _psi_m(z1 * inv_l)), 0.01)
    wth0 = np.maximum(wth0, -THETA_STAR_MAX * ustar)
    wq0 = np.maximum(wq0, -DEW_MAX * q1 * ustar)
    inv_l = -KAPPA * G * (wth0 + 0.61 * theta1 * wq0) / (thv1 * ustar**3)
    return _SurfaceLayer(ustar, inv_l, wth0, wq0, speed)


# ---------------------------------------------------------------------------- YSU mixing


def _pbl_height(ri: np.ndarray, ri_cr: np.ndarray | float) -> np.ndarray:
    """YSU PBL height (m): the lowest height where the bulk Richardson number profile ``ri``
    (L, n), g (thv(z) - thermal) z / (thv1 max(|U(z)|^2, 1)), exceeds ``ri_cr``,
    interpolated between levels; the top of the column when it never does."""
    above = ri > ri_cr
    above[0] = False  # thermal >= thv1, so Ri(z1) <= 0 <= ri_cr; guards round-off
    none = ~above.any(axis=0)
    k = np.where(none, L_MODEL - 1, np.argmax(above, axis=0))
    k = np.maximum(k, 1)
    ri_hi = np.take_along_axis(ri, k[None], axis=0)[0]
    ri_lo = np.take_along_axis(ri, k[None] - 1, axis=0)[0]
    frac = np.clip((ri_cr - ri_lo) / np.maximum(ri_hi - ri_lo, 1e-12), 0.0, 1.0)
    h = Z[k - 1] + frac * (Z[k] - Z[k - 1])
    return np.where(none, Z[-1], h)


@dataclass(frozen=True)
class _Turbulence:
    """Diagnostics of one step: all (n,) except the diffusivities, (L+1, n) on interfaces."""

    ustar: np.ndarray
    inv_l: np.ndarray
    wth0: np.ndarray
    wq0: np.ndarray
    h: np.ndarray
    k_h: np.ndarray
    k_m: np.ndarray
    gamma: np.ndarray  # counter-gradient term for theta (K/m)
    drag: np.ndarray  # u*^2 / |U1| (m/s), |U1| with gustiness


def _turbulence(
    state: np.ndarray,
    wth0: np.ndarray,
    wq0: np.ndarray,
    z0: np.ndarray,
    options: PblOptions,
) -> _Turbulence:
    """Surface layer, PBL height and diffusivities for state (L, 4, n) = theta, q, u, v.

    Written with arithmetic masks rather than ``np.where`` and without transcendental
    functions on (L, n) arrays where possible: this runs every step for every column.
    """
    theta, q, u, v = state[:, 0], state[:, 1], state[:, 2], state[:, 3]
    speed2 = u * u + v * v
    speed1 = np.maximum(np.sqrt(speed2[0]), 0.5)
    sfc = _surface_layer(speed1, wth0, wq0, theta[0], q[0], z0)
    ustar, inv_l, wth0, wq0 = sfc.ustar, sfc.inv_l, sfc.wth0, sfc.wq0
    thv = theta * (1.0 + 0.61 * q)
    wthv0 = wth0 + 0.61 * theta[0] * wq0
    unstable = wthv0 > 0.0
    wthv_pos = np.maximum(wthv0, 0.0)

    # PBL height: first pass without thermal excess, then (unstable only) with it.
    ri_cr = np.where(unstable, 0.0, options.ri_cr_stable)
    ri_per_kelvin = (G * Z[:, None]) / (thv[0] * np.maximum(speed2, 1.0))
    ri = (thv - thv[0]) * ri_per_kelvin
    h = _pbl_height(ri, ri_cr)
    wsm = np.cbrt(ustar**3 + 4.0 * KAPPA * G / thv[0] * wthv_pos * h)
    excess = np.minimum(YSU_B * wthv_pos / wsm, 3.0)  # YSU caps the thermal excess at 3 K
    if unstable.any():
        h = np.where(unstable, _pbl_height(ri - excess * ri_per_kelvin, ri_cr), h)
    h = np.maximum(h, Z[0])
    # ws = (u*^3 + 8 kappa w*^3 / 2)^(1/3), w*^3 = g/thv (w'thv')0 h (README, YSU).
    wsm = np.cbrt(ustar**3 + 4.0 * KAPPA * G / thv[0] * wthv_pos * h)

    # The (L-1, n) work below runs in float32: it only sets diffusivities (conservation
    # comes from the flux form of `_mix_step`, in float64) and is most of a step's cost.
    f4 = np.float32
    zi = _ZI32  # interior interfaces (L-1, 1); the boundary ones carry no mixing
    h4, inv_h = h.astype(f4), (1.0 / h).astype(f4)
    shape = 1.0 - np.minimum(zi * inv_h, f4(1.0))
    # Velocity scale: the mixed-layer ws when unstable, u*/phi_m(z/L) when stable.
    ws = ustar.astype(f4) / (1.0 + 5.0 * np.clip(zi * inv_l.astype(f4), 0.0, 1.0))
    ws += ((wsm - ustar) * unstable).astype(f4)
    k_pbl = (KAPPA * zi) * ws * shape * shape  # zero at and above h
    # Hong et al. (2006) Prandtl number, Pr0 from surface-layer similarity at 0.1 h.
    zeta_sl = np.clip(0.1 * h * inv_l, -10.0, 0.0)
    pr0 = np.where(unstable, (1.0 - 16.0 * zeta_sl) ** -0.25 + YSU_B * 0.1 * KAPPA, 1.0)
    pr0 = np.clip(pr0, 0.5, 4.0).astype(f4)
    arg = (zi - 0.1 * h4) * inv_h
    pr = 1.0 + (pr0 - 1.0) * np.exp(-3.0 * arg * arg)
    in_pbl = zi < h4
    gamma = in_pbl * (YSU_B * np.maximum(wth0, 0.0) / (wsm * h)).astype(f4)

    # Local mixing K = l^2 |dU/dz| f(Ri) above h (Hong et al. 2006 stability functions).
    u4, v4, thv4 = u.astype(f4), v.astype(f4), thv.astype(f4)
    du, dv = u4[1:] - u4[:-1], v4[1:] - v4[:-1]
    shear2 = np.maximum((du * du + dv * dv) * _INV_DZ2_32, f4(1e-8))
    ri_g = (G * _INV_DZ_32) * (thv4[1:] - thv4[:-1]) / (thv4[:-1] * shear2)
    ri_pos = np.maximum(ri_g, f4(0.0))
    ri_neg = np.minimum(ri_g, f4(0.0))
    length = KAPPA * zi / (1.0 + KAPPA * zi / f4(options.mixing_length_m))
    f_h = np.sqrt((1.0 - 8.0 * ri_neg) * shear2) / ((1.0 + 5.0 * ri_pos) ** 2)
    k_loc_h = (length * length) * f_h * ~in_pbl
    k_loc_m = k_loc_h * (1.0 + 2.1 * ri_pos)

    k_h = np.zeros((L_MODEL + 1, len(h)))
    k_m = np.zeros_like(k_h)
    k_h[1:-1] = np.clip(np.maximum(k_pbl / pr, k_loc_h), K_MIN, K_MAX)
    k_m[1:-1] = np.clip(np.maximum(k_pbl, k_loc_m), K_MIN, K_MAX)
    # Entrainment: at the first interface at or above h, a diffusivity that carries the
    # flux -entrainment (w'thv')0 down the local theta gradient (YSU's explicit treatment).
    cols = np.flatnonzero(unstable & (h < Z_I[-2]))
    if cols.size:
        idx = np.searchsorted(Z_I, h[cols])
        grad = (theta[idx, cols] - theta[idx - 1, cols]) / DZ_C[idx]
        k_ent = options.entrainment * wthv_pos[cols] / np.maximum(grad, 1e-3)
        k_h[idx, cols] = np.clip(np.maximum(k_h[idx, cols], k_ent), K_MIN, K_MAX)
        k_m[idx, cols] = np.clip(np.maximum(k_m[idx, cols], k_ent), K_MIN, K_MAX)
    gamma_full = np.zeros_like(k_h)
    gamma_full[1:-1] = gamma
    return _Turbulence(
        ustar=ustar,
        inv_l=inv_l,
        wth0=wth0,
        wq0=wq0,
        h=h,
        k_h=k_h,
        k_m=k_m,
        gamma=gamma_full,
        drag=ustar**2 / sfc.speed,  # stress u*^2 along the resolved wind
    )


def _solve_tridiagonal(
    lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray
) -> np.ndarray:
    """Thomas algorithm along axis 0, batched over the other axes (coefficients broadcast
    against ``rhs``). The loop runs over levels only; the systems are diagonally dominant
    (backward-Euler diffusion), so no pivoting is needed."""
    n = diag.shape[0]
    c = np.empty(np.broadcast_shapes(upper.shape, diag.shape))
    d = np.empty(np.broadcast_shapes(rhs.shape, diag.shape))
    inv = 1.0 / diag[0]
    c[0] = upper[0] * inv
    d[0] = rhs[0] * inv
    for k in range(1, n):
        inv = 1.0 / (diag[k] - lower[k] * c[k - 1])
        c[k] = upper[k] * inv
        d[k] = (rhs[k] - lower[k] * d[k - 1]) * inv
    for k in range(n - 2, -1, -1):
        d[k] -= c[k] * d[k + 1]
    return d


def _mix_step(
    state: np.ndarray,
    k_h: np.ndarray,
    k_m: np.ndarray,
    gamma: np.ndarray,
    wth0: np.ndarray,
    wq0: np.ndarray,
    drag: np.ndarray,
    rho: np.ndarray,
    rho_i: np.ndarray,
    dt: float,
    *,
    overwrite: bool = False,
) -> np.ndarray:
    """One backward-Euler step of d(phi)/dt = (1/rho) d/dz[rho K (d(phi)/dz - gamma)].

    Flux form on the layers: each layer's change is the flux into its bottom minus the flux
    out of its top, so sum(rho dz theta) changes by exactly dt rho_s (w'theta')0 (and nothing
    at zero flux) and momentum only loses what the surface drag removes. ``state`` (L, 4, n)
    holds theta (K), q (kg/kg), u, v (m/s); k_h, k_m, gamma (L+1, n) on the interfaces (zero at
    the bottom and top); wth0, wq0 (n,) kinematic surface fluxes; drag (n,) = u*^2/|U1|, the
    implicit surface stress coefficient; rho (L, n), rho_i (L+1, n) densities. Heat and
    vapour share K_h, the wind components K_m: one batched solve with two matrices.
    ``overwrite`` lets the step reuse ``state``'s (contiguous) memory.
    """
    n = state.shape[-1]
    inv_mass = 1.0 / (rho * DZ[:, None])  # (L, n)
    conduct = dt * rho_i / DZ_C[:, None]  # (L+1, n)
    coef = np.empty((L_MODEL + 1, 2, 1, n))  # heat, momentum
    coef[:, 0, 0] = conduct * k_h
    coef[:, 1, 0] = conduct * k_m
    lower = -coef[:-1] * inv_mass[:, None, None]
    upper = -coef[1:] * inv_mass[:, None, None]
    diag = 1.0 - lower - upper
    diag[0, 1, 0] += dt * rho_i[0] * drag * inv_mass[0]
    rhs = (state if overwrite else state.copy()).reshape(L_MODEL, 2, 2, n)
    # Counter-gradient and surface fluxes enter explicitly, as flux differences.
    cg = rho_i * k_h * gamma  # (L+1, n), the upward flux carried by the counter-gradient term
    rhs[:, 0, 0] += dt * (cg[:-1] - cg[1:]) * inv_mass
    rhs[0, 0, 0] += dt * rho_i[0] * wth0 * inv_mass[0]
    rhs[0, 0, 1] += dt * rho_i[0] * wq0 * inv_mass[0]
    return _solve_tridiagonal(lower, diag, upper, rhs).reshape(L_MODEL, 4, n)


def _rotate(state: np.ndarray, ug: np.ndarray, vg: np.ndarray, dt: float) -> np.ndarray:
    """Coriolis as an exact rotation of the ageostrophic wind by -f dt (forward Euler would
    grow the inertial oscillation by ~8 % a day at dt = 180 s)."""
    c, s = np.cos(CORIOLIS * dt), np.sin(CORIOLIS * dt)
    du, dv = state[:, 2] - ug, state[:, 3] - vg
    out = state.copy()
    out[:, 2] = ug + c * du + s * dv
    out[:, 3] = vg - s * du + c * dv
    return out


def _step(
    state: np.ndarray,
    wth0: np.ndarray,
    wq0: np.ndarray,
    site: _Site,
    dt: float,
    options: PblOptions,
) -> tuple[np.ndarray, _Turbulence]:
    """One model step for state (L, 4, n) under kinematic surface fluxes wth0 (K m/s) and
    wq0 (kg/kg m/s): turbulence, Coriolis, then implicit mixing."""
    turb = _turbulence(state, wth0, wq0, site.z0, options)
    new = _mix_step(
        _rotate(state, site.ug, site.vg, dt),
        turb.k_h,
        turb.k_m,
        turb.gamma,
        turb.wth0,
        turb.wq0,
        turb.drag,
        site.rho,
        site.rho_i,
        dt,
        overwrite=True,
    )
    return new, turb


# ------------------------------------------------------------------ columns and forcing


@dataclass(frozen=True)
class _Site:
    """What stays fixed in a column during a run; every field is (n,) or (L(+1), n)."""

    doy: np.ndarray
    ps: np.ndarray  # hPa
    z0: np.ndarray  # m
    cloud: np.ndarray  # 0-1
    soil_moisture: np.ndarray  # m3/m3
    bowen: np.ndarray
    t_deep: np.ndarray  # K
    ug: np.ndarray  # m/s
    vg: np.ndarray  # m/s
    rho: np.ndarray  # kg/m3 at levels (L, n)
    rho_i: np.ndarray  # kg/m3 at interfaces (L+1, n)
    exner: np.ndarray  # (p/1000 hPa)^(R/cp) at levels (L, n)
    pressure: np.ndarray  # hPa at levels (L, n)
    day_length_h: np.ndarray  # h
    sw_noon: np.ndarray  # W/m2, noon shortwave under the column's cloud

    def take(self, index: np.ndarray | slice) -> _Site:
        return _Site(**{name: value[..., index] for name, value in self.__dict__.items()})


def _seasonal_t(doy: np.ndarray) -> np.ndarray:
    """Daily-mean 2-m air temperature (K) of the central US through the year."""
    return 286.0 + 13.0 * np.cos(2 * np.pi * (doy - 200.0) / 365.0)


def _draw(n: int, rng: np.random.Generator) -> tuple[_Site, np.ndarray]:
    """Random columns at 05 local solar time: their fixed parameters and state (L, 4, n)."""
    doy = rng.uniform(1.0, 366.0, n)
    ps = rng.uniform(955.0, 990.0, n)
    z0 = np.exp(rng.uniform(np.log(0.05), np.log(0.5), n))
    cloud = rng.uniform(0.0, 1.0, n) ** 2
    soil = rng.uniform(0.05, 0.45, n)
    # Bowen ratio 3 on dry soil to 0.3 on wet soil (README range), with scatter.
    bowen = np.exp(np.log(3.0) - (soil - 0.05) / 0.4 * np.log(10.0) + rng.normal(0, 0.2, n))
    t_deep = 286.0 + 9.0 * np.cos(2 * np.pi * (doy - 230.0) / 365.0) + rng.normal(0, 1.5, n)
    ug = rng.uniform(-15.0, 15.0, n)
    vg = rng.uniform(-15.0, 15.0, n)
    site = _Site(
        doy=doy,
        ps=ps,
        z0=z0,
        cloud=cloud,
        soil_moisture=soil,
        bowen=bowen,
        t_deep=t_deep,
        ug=ug,
        vg=vg,
        rho=_density(Z, ps),
        rho_i=_density(Z_I, ps),
        exner=_exner(_pressure(Z, ps)),
        pressure=_pressure(Z, ps),
        day_length_h=12.0 + 2.6 * np.sin(2 * np.pi * (doy - 80.0) / 365.0),
        # Noon sun at 37 N (declination 23.45 deg), air mass dimming, cloud cover.
        sw_noon=1050.0
        * np.sin(np.radians(53.0 + 23.45 * np.sin(2 * np.pi * (doy - 80.0) / 365.0))) ** 1.2
        * (1.0 - 0.7 * cloud**2),
    )
    # Sounding: theta = theta_s + inversion + Gamma z; README's parametric recipe.
    t_sfc = _seasonal_t(doy) - 5.0 + rng.normal(0.0, 4.0, n)
    theta_s = t_sfc * (1000.0 / ps) ** (R_D / CP)
    lapse = rng.uniform(2e-3, 8e-3, n)
    inv_depth = rng.uniform(100.0, 300.0, n)
    inv_strength = rng.uniform(1.0, 8.0, n) * (1.0 - 0.7 * cloud)
    s = np.minimum(Z[:, None] / inv_depth, 1.0)
    theta = theta_s + inv_strength * (1.0 - (1.0 - s) ** 2) + lapse * Z[:, None]
    rh_sfc = rng.uniform(0.4, 0.9, n)
    rh_top = rh_sfc * rng.uniform(0.3, 1.0, n)
    rh = rh_sfc - (rh_sfc - rh_top) * np.minimum(Z[:, None] / 3000.0, 1.0)
    q = rh * _qsat(theta * site.exner, site.pressure)
    log_layer = np.maximum(inv_depth, 100.0)
    shape = np.minimum(np.log(Z[:, None] / z0) / np.log(log_layer / z0), 1.0)
    state = np.stack([theta, q, ug * shape, vg * shape], axis=1)
    return site, state


@dataclass(frozen=True)
class _Forcing:
    sw_down: np.ndarray
    net_radiation: np.ndarray
    sensible: np.ndarray  # W/m2, up
    latent: np.ndarray  # W/m2, up
    ground: np.ndarray  # W/m2, into the ground


def _forcing(hour: np.ndarray | float, site: _Site) -> _Forcing:
    """Diurnal surface energy budget at local solar ``hour``: clear-sky shortwave from the
    season's noon sun at 37 N dimmed by cloud, net longwave loss of 100 W/m2 (clear) to
    30 W/m2 (overcast); by day 10 % of net radiation goes into the ground and the rest is
    split by the Bowen ratio, at night the loss is shared 30/60/10 by sensible, ground and
    latent heat, so clear nights have H = -30 W/m2 (README)."""
    day_len = site.day_length_h
    clock = np.asarray(hour) % 24.0
    sun = np.sin(np.pi * (clock - (12.0 - day_len / 2)) / day_len)
    sw = site.sw_noon * np.maximum(sun, 0.0) ** 1.2  # sun < 0 before sunrise, after sunset
    rn = (1.0 - ALBEDO) * sw - (100.0 - 70.0 * site.cloud)
    day = rn > 0
    ground = np.where(day, 0.1 * rn, 0.6 * rn)
    sensible = np.where(day, 0.9 * rn * site.bowen / (1 + site.bowen), 0.3 * rn)
    latent = np.where(day, 0.9 * rn / (1 + site.bowen), 0.1 * rn)
    return _Forcing(sw, rn, sensible, latent, ground)


def _kinematic(forcing: _Forcing, site: _Site) -> tuple[np.ndarray, np.ndarray]:
    rho_s = site.rho_i[0]
    return forcing.sensible / (rho_s * CP), forcing.latent / (rho_s * L_V)


# ------------------------------------------------------------------------------ simulate


def simulate(
    n: int, seed: int, options: PblOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` columns in physical units: inputs (n, 16) in INPUT_NAMES' units and profiles
    (n, 4, 17): U, V (m/s), T (K), QV (kg/kg) at Z_LEVELS_M.

    Columns start at 05 local solar time and are sampled 3, 6, ..., ``max_lead_h`` hours
    later. All columns share the time loop: they are sorted by lead and only those already
    running are stepped, so the cost is the mean lead, not the longest, times n.
    """
    run = _run(n, seed, options or PblOptions())
    return run.x, run.profiles


@dataclass(frozen=True)
class _Run:
    """A simulation with what the real-data check needs besides the samples."""

    x: np.ndarray  # (n, 16) inputs, physical units
    profiles: np.ndarray  # (n, 4, 17) U, V, T, QV
    theta: np.ndarray  # (n, 17) potential temperature (K)
    doy: np.ndarray  # (n,) day of year
    hour: np.ndarray  # (n,) local solar time of the sample (h, 0-24)


def _run(n: int, seed: int, options: PblOptions) -> _Run:
    rng = np.random.default_rng(seed)
    site, state = _draw(n, rng)
    n_leads = options.max_lead_h // 3
    lead_h = 3 * rng.integers(1, n_leads + 1, n)

    order = np.argsort(-lead_h, kind="stable")
    site, state, lead_h = site.take(order), state[..., order], lead_h[order]
    steps_per_hour = 3600 // options.dt_s
    total = options.max_lead_h * steps_per_hour
    start_step = total - lead_h * steps_per_hour  # non-decreasing after the sort
    active_until = np.searchsorted(start_step, np.arange(total), side="right")

    dt = float(options.dt_s)
    cooling = options.radiative_cooling_k_per_day * dt / 86400.0  # K per step
    for step in range(total):
        m = int(active_until[step])
        if m == 0:
            continue
        sub = site if m == n else site.take(slice(0, m))
        hour = 5.0 + (step - start_step[:m]) * dt / 3600.0
        wth0, wq0 = _kinematic(_forcing(hour, sub), sub)
        new, _ = _step(state[..., :m], wth0, wq0, sub, dt, options)
        new[:, 0] -= cooling
        if step % 10 == 9 or step == total - 1:
            # Vapour above saturation rains out every 10 steps; latent heating is ignored
            # (the model has no clouds).
            qsat = _qsat(new[:, 0] * sub.exner, sub.pressure)
            new[:, 1] = np.clip(new[:, 1], 1e-6, qsat)
        state[..., :m] = new

    x, profiles = _diagnose(state, site, 5.0 + lead_h, options)
    inverse = np.argsort(order)
    return _Run(
        x=x[inverse],
        profiles=profiles[inverse],
        theta=state[:N_LEVELS, 0].T[inverse],
        doy=site.doy[inverse],
        hour=((5.0 + lead_h) % 24.0)[inverse],
    )


def _diagnose(
    state: np.ndarray, site: _Site, hour: np.ndarray, options: PblOptions
) -> tuple[np.ndarray, np.ndarray]:
    """The 16 inputs a PBL scheme sees (WRF's surface fields) and the emulated profiles."""
    forcing = _forcing(hour, site)
    wth0, wq0 = _kinematic(forcing, site)
    turb = _turbulence(state, wth0, wq0, site.z0, options)
    theta, q, u, v = state[:, 0], state[:, 1], state[:, 2], state[:, 3]
    # Fluxes as the model applied them, after the stable-surface limits.
    sensible = turb.wth0 * site.rho_i[0] * CP
    latent = turb.wq0 * site.rho_i[0] * L_V

    ustar, inv_l, z1 = turb.ustar, turb.inv_l, Z[0]
    z0h = site.z0 / 10.0
    psi_m1, psi_h1 = _psi_m(z1 * inv_l), _psi_h(z1 * inv_l)
    psi_m10, psi_h2 = _psi_m(10.0 * inv_l), _psi_h(2.0 * inv_l)
    theta_star = -turb.wth0 / ustar
    q_star = -turb.wq0 / ustar
    theta_skin = theta[0] - theta_star / KAPPA * (np.log(z1 / z0h) - psi_h1)
    theta2 = theta_skin + theta_star / KAPPA * (np.log(2.0 / z0h) - psi_h2)
    q2 = np.maximum(q[0] + q_star / KAPPA * (np.log(2.0 / z1) - psi_h2 + psi_h1), 1e-6)
    wind_ratio = (np.log(10.0 / site.z0) - psi_m10) / (np.log(z1 / site.z0) - psi_m1)
    p_sfc = site.ps
    t2 = theta2 * _exner(p_sfc * np.exp(-2.0 / H_SCALE))
    t_skin = theta_skin * _exner(p_sfc)
    # Brutsaert (1975) clear-sky emissivity, raised by cloud (Crawford and Duchon 1999 form).
    e_hpa = q2 * p_sfc / (0.622 + 0.378 * q2)
    emissivity = np.minimum(1.24 * (e_hpa / t2) ** (1 / 7) * (1.0 + 0.22 * site.cloud**2), 1.0)
    x = np.stack(
        [
            q2,
            t2,
            u[0] * wind_ratio,
            v[0] * wind_ratio,
            forcing.ground,
            forcing.sw_down,
            emissivity * SIGMA * t2**4,
            turb.h,
            sensible,
            latent,
            ustar,
            t_skin,
            site.t_deep,
            site.soil_moisture,
            site.ug,
            site.vg,
        ],
        axis=1,
    )
    k = N_LEVELS
    temperature = theta[:k] * site.exner[:k]
    profiles = np.stack([u[:k], v[:k], temperature, q[:k]]).transpose(2, 0, 1)
    return x, profiles


# ---------------------------------------------------------------------- normalisation


def normalisation() -> dict[str, np.ndarray]:
    """Fixed per-output mean and scale (physical units) of y, (68,) each, with the input
    ranges and level heights: constants, not statistics of a split, so every split, worker
    and cache agrees, and a model's predictions mean the same thing in every study.

    Simple functions of height fitted by eye to 6,000 columns of the default options: U and V
    centre on 0 with 8 m/s; T falls 6.5 K/km from 288 K with 11.5 K; QV decays from 6.5 g/kg
    with a 4 km scale, its spread from 4 g/kg with an 8 km scale.
    """
    z = Z_LEVELS_M
    zeros = np.zeros(N_LEVELS)
    mean = np.concatenate([zeros, zeros, 288.0 - 6.5e-3 * z, 6.5e-3 * np.exp(-z / 4000.0)])
    std = np.concatenate([zeros + 8.0, zeros + 8.0, zeros + 11.5, 4.0e-3 * np.exp(-z / 8000.0)])
    return {
        "y_mean": mean,
        "y_std": std,
        "x_low": INPUT_RANGES[:, 0].copy(),
        "x_high": INPUT_RANGES[:, 1].copy(),
        "z_m": Z_LEVELS_M.copy(),
    }


def scale_inputs(x: np.ndarray) -> np.ndarray:
    """Physical inputs (n, 16) to [0, 1] by the fixed INPUT_RANGES, clipped."""
    low, high = INPUT_RANGES[:, 0], INPUT_RANGES[:, 1]
    return np.clip((x - low) / (high - low), 0.0, 1.0).astype(np.float32)


def generate(
    n: int, seed: int, options: PblOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples ready for a network: x float32 (n, 16) in [0, 1] and y float32 (n, 68)
    standardised by `normalisation` (U, V, T, QV blocks of 17 levels, bottom up)."""
    x, profiles = simulate(n, seed, options)
    norm = normalisation()
    y = (profiles.reshape(n, -1) - norm["y_mean"]) / norm["y_std"]
    return scale_inputs(x), y.astype(np.float32)


def build(options: PblOptions, seed: int) -> Splits:
    """Train, validation and test columns, each drawn from its own seed."""
    splits = generated_splits(
        lambda n, s: generate(n, s, options),
        options.n_train,
        options.n_val,
        options.n_test,
        seed,
    )
    return Splits(
        splits.x_train,
        splits.y_train,
        splits.x_val,
        splits.y_val,
        splits.x_test,
        splits.y_test,
        meta=normalisation(),
    )


# ------------------------------------------------------------------------------- metrics


def score(
    y_true: np.ndarray, y_pred: np.ndarray, meta: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """R^2 and MAE in physical units, as the reference reports them.

    ``r2`` is the mean of the 68 per-output R^2 (scikit-learn's uniform average; R^2 does
    not change under the standardisation). ``mae`` is the mean absolute error in
    standardised units, the only way to pool m/s, K and kg/kg. Per variable: ``r2_<var>``
    averages the 17 levels, ``mae_u``/``mae_v`` in m/s, ``mae_t`` in K, ``mae_qv`` in g/kg;
    ``*_l1`` are the lowest level (25 m) alone, the level the reference notebook quotes.
    """
    if "y_mean" not in meta or "y_std" not in meta:
        raise TaskError("pbl metrics need meta y_mean and y_std (meta_y_mean, meta_y_std in .npz)")
    n_out = 4 * N_LEVELS
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if y_true.shape[1] != n_out or y_pred.shape != y_true.shape:
        raise TaskError(
            f"pbl targets must be (n, {n_out}) = U, V, T, QV on {N_LEVELS} levels; "
            f"got {y_true.shape} and {y_pred.shape}"
        )
    mean = np.asarray(meta["y_mean"], dtype=np.float64)
    std = np.asarray(meta["y_std"], dtype=np.float64)
    true_phys = y_true * std + mean
    pred_phys = y_pred * std + mean
    r2 = r2_per_output(true_phys, pred_phys)
    abs_err = np.abs(true_phys - pred_phys).mean(axis=0)
    out = {"r2": float(r2.mean()), "mae": float(np.abs(y_true - y_pred).mean())}
    unit = {"u": 1.0, "v": 1.0, "t": 1.0, "qv": 1000.0}  # QV reported in g/kg
    for i, var in enumerate(VARIABLES):
        block = slice(i * N_LEVELS, (i + 1) * N_LEVELS)
        out[f"r2_{var}"] = float(r2[block].mean())
        out[f"mae_{var}"] = float(abs_err[block].mean() * unit[var])
    for i, var in enumerate(VARIABLES):
        out[f"r2_{var}_l1"] = float(r2[i * N_LEVELS])
        out[f"mae_{var}_l1"] = float(abs_err[i * N_LEVELS] * unit[var])
    return out


PBL = TaskInfo(
    name="pbl",
    description=(
        "PBL emulation: 16 surface scalars -> U, V, T, QV on 17 levels (0-2 km), "
        "from a YSU-like single-column model (Wang et al. 2019, GMD)"
    ),
    kind="regression",
    metrics={
        "r2": "maximize",
        "mae": "minimize",
        "r2_u": "maximize",
        "r2_v": "maximize",
        "r2_t": "maximize",
        "r2_qv": "maximize",
        "mae_u": "minimize",
        "mae_v": "minimize",
        "mae_t": "minimize",
        "mae_qv": "minimize",
    },
    options=PblOptions,
    build=build,
    score=score,
)
