from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nmhpo.errors import TaskError
from nmhpo.tasks import bin_events, dvs_events, get_task, load_task, prepare
from nmhpo.tasks._dvs_gesture import decode as decode_aedat
from nmhpo.tasks._events import saccade_offsets
from nmhpo.tasks._nmnist import decode, read_file


#: The shared event fixtures (`_event_data`). Absent, these tests fail: they must not
#: silently skip.
def _event_data() -> Path:
    """$NMHPO_EVENT_DATA, else ``shared/data/events`` beside this checkout, else on this
    machine's shared folder (a CI clone may live elsewhere, e.g. under /tmp)."""
    if "NMHPO_EVENT_DATA" in os.environ:
        return Path(os.environ["NMHPO_EVENT_DATA"])
    beside = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "events"
    machine = Path("/work/shared/data/events")
    return beside if beside.is_dir() or not machine.is_dir() else machine


EVENT_DATA = _event_data()
SAMPLE = EVENT_DATA / "tonic_sample_nmnist.bin"


def test_real_nmnist_recording_decodes_as_its_readme_states() -> None:
    assert SAMPLE.is_file(), f"missing fixture {SAMPLE} (set NMHPO_EVENT_DATA)"
    ev = read_file(SAMPLE)
    assert len(ev["t"]) == 4325
    assert ev["x"].min() == 0 and ev["x"].max() == 33
    assert ev["y"].min() == 0 and ev["y"].max() == 33
    assert np.bincount(ev["p"]).tolist() == [2180, 2145]
    assert ev["t"].min() == 654 and ev["t"].max() == 311_175
    assert np.all(np.diff(ev["t"]) >= 0)


def test_decode_reads_polarity_timestamp_and_overflow_records() -> None:
    def record(x: int, y: int, p: int, t: int) -> list[int]:
        word = (p << 23) | t
        return [x, y, word >> 16, (word >> 8) & 255, word & 255]

    raw = bytes(
        record(3, 4, 1, 0x7FFFFF)
        + record(0, 240, 0, 0)  # overflow: later timestamps gain 2**13 us (as tonic)
        + record(33, 0, 0, 5)
    )
    ev = decode(raw)
    assert ev["x"].tolist() == [3, 33] and ev["y"].tolist() == [4, 0]
    assert ev["p"].tolist() == [1, 0]
    assert ev["t"].tolist() == [0x7FFFFF, 5 + 2**13]
    with pytest.raises(ValueError, match="5-byte"):
        decode(raw[:-1])


def test_binning_counts_every_event_in_the_window_once() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    x, y = rng.integers(0, 34, n), rng.integers(0, 34, n)
    t, p = rng.uniform(0, 1000, n), rng.integers(0, 2, n)
    frames = bin_events(x, y, t, p, time_bins=7, height=34, width=34, t_start=0.0, t_end=1000.0)
    assert frames.shape == (7, 2, 34, 34) and frames.dtype == np.uint8
    assert int(frames.sum(dtype=np.int64)) == n
    assert frames[:, 1].sum(dtype=np.int64) == p.sum()
    per_bin = np.bincount((t // (1000 / 7)).astype(int), minlength=7)
    assert frames.sum(axis=(1, 2, 3)).tolist() == per_bin.tolist()
    # an event at exactly (x, y, t, p) lands in its own cell
    one = bin_events([5], [6], [250.0], [1], time_bins=4, height=8, width=8, t_start=0, t_end=1000)
    assert one[1, 1, 6, 5] == 1 and one.sum() == 1
    # outside the window or the sensor: dropped
    out = bin_events([1, 40], [1, 1], [1000.0, 1.0], [0, 0], time_bins=2, height=8, width=8,
                     t_start=0, t_end=1000)  # fmt: skip
    assert out.sum() == 0


def test_camera_sees_moving_edges_and_nothing_in_a_static_scene() -> None:
    static = np.full((5, 6, 6), 0.7)
    assert dvs_events(static, 0.2).sum() == 0
    # a bright bar moving right by one column per frame over a dark background
    scene = np.zeros((4, 6, 8))
    for k in range(4):
        scene[k, :, 2 + k] = 1.0
    ev = dvs_events(scene, 0.2)
    assert ev.shape == (3, 2, 6, 8)
    for k in range(3):
        on_cols = np.flatnonzero(ev[k, 1].sum(axis=0))
        off_cols = np.flatnonzero(ev[k, 0].sum(axis=0))
        assert on_cols.tolist() == [3 + k]  # the leading edge brightens: ON
        assert off_cols.tolist() == [2 + k]  # the trailing edge darkens: OFF
    # a change of log((1 + 0.1) / 0.1) = 2.4 crosses 2.4 / 0.2 = 11-12 levels
    assert 11 <= ev[0, 1, 0, 3] <= 12


def test_saccades_return_to_their_start() -> None:
    path = saccade_offsets(24, 4.0)
    assert path.shape == (25, 2)
    np.testing.assert_allclose(path[0], path[-1])
    assert np.abs(path).max() <= 2.0


def test_events_digits_are_event_frames_from_moving_digits() -> None:
    info = get_task("events-digits")
    assert info.events
    data = load_task("events-digits", n_train=200, time_bins=12, size=20)
    assert data.x_train.shape == (200, 12, 2, 20, 20)
    assert data.x_train.dtype == np.uint8
    assert data.input_shape == (2, 20, 20) and data.n_features == 800 and data.time_bins == 12
    counts = data.x_train.sum(axis=(1, 2, 3, 4), dtype=np.int64)
    assert counts.min() > 100  # every digit makes events as it moves
    assert (data.x_train > 0).mean() < 0.3  # but only at its edges: sparse
    # ON and OFF both occur; the closed saccade path makes as many of each over a sample
    assert data.x_train[:, :, 1].sum(dtype=np.int64) == data.x_train[:, :, 0].sum(dtype=np.int64)


def _nmnist_folder(root: Path, test: bool = True) -> Path:
    for split, digits in (("Train", range(10)), ("Test", range(10) if test else ())):
        for d in digits:
            for i in range(3 if split == "Train" else 1):
                folder = root / split / str(d)
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(SAMPLE, folder / f"{i:05d}.bin")
    return root


def test_nmnist_folder_reads_into_event_splits(tmp_path: Path) -> None:
    info = get_task("nmnist")
    root = _nmnist_folder(tmp_path / "N-MNIST")
    data = prepare(info, info.options(time_bins=10, val_fraction=0.25), 0, data_path=root)
    assert data.input_shape == (2, 34, 34) and data.time_bins == 10
    # as the mnist task: one Train recording per class is set aside (a split needs a test part)
    assert len(data.x_train) == 10 and len(data.x_val) == 10 and len(data.x_test) == 10
    assert sorted(data.y_test.tolist()) == list(range(10))
    # the whole recording (t <= 311 ms) is inside the default 320 ms window
    assert data.x_test.sum(axis=(1, 2, 3, 4), dtype=np.int64).tolist() == [4325] * 10
    assert data.x_test[0, :, 1].sum() == 2145


def test_nmnist_without_test_folder_splits_train_and_refuses_a_bad_folder(
    tmp_path: Path,
) -> None:
    info = get_task("nmnist")
    root = _nmnist_folder(tmp_path / "N-MNIST", test=False)
    data = prepare(info, info.options(time_bins=3), 0, data_path=root)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 30
    with pytest.raises(TaskError, match="no Train/ folder"):
        prepare(info, info.options(), 0, data_path=tmp_path)
    with pytest.raises(TaskError, match=r"set \[task\] path"):
        prepare(info, info.options(), 0)


def _shd_file(path: Path, times: list[list[float]], units: list[list[int]], labels: list[int]):
    import h5py

    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        t = spikes.create_dataset("times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
        u = spikes.create_dataset("units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (ti, ui) in enumerate(zip(times, units, strict=True)):
            t[i], u[i] = np.asarray(ti, np.float32), np.asarray(ui, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))


def test_shd_files_bin_every_spike_by_unit_and_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n, labels = 60, [i % 20 for i in range(60)]
    times = [np.sort(rng.uniform(0, 1.3, 50 + i)).tolist() for i in range(n)]
    units = [rng.integers(0, 700, 50 + i).tolist() for i in range(n)]
    (tmp_path / "N-MNIST").mkdir()
    _shd_file(tmp_path / "shd_train.h5", times, units, labels)
    _shd_file(tmp_path / "shd_test.h5", times[:20], units[:20], labels[:20])
    info = get_task("shd")
    data = prepare(info, info.options(time_bins=13), 0, data_path=tmp_path)
    assert data.input_shape == (700,) and data.time_bins == 13
    assert data.x_test.shape == (20, 13, 700) and data.y_test.tolist() == labels[:20]
    # every spike within the 1.4 s window is counted once, in its unit's channel and time bin
    assert data.x_test.sum(axis=(1, 2), dtype=np.int64).tolist() == [50 + i for i in range(20)]
    k = int(times[3][0] * 1000 * 13 / 1400)
    assert data.x_test[3, k, units[3][0]] >= 1
    with pytest.raises(TaskError, match="no shd_train.h5"):
        prepare(info, info.options(), 0, data_path=tmp_path / "N-MNIST")  # no .h5 there


def test_a_users_event_npz_is_read_as_clipped_uint8_counts(tmp_path: Path) -> None:
    x = np.zeros((4, 3, 2, 5, 5), dtype=np.int64)
    x[0, 1, 1, 2, 2] = 300
    x[1, 0, 0, 0, 0] = 7
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x, y_train=np.arange(4), x_val=x, y_val=np.arange(4))
    data = prepare(get_task("events-digits"), get_task("events-digits").options(), 0,
                   data_path=path)  # fmt: skip
    assert data.x_train.dtype == np.uint8 and data.input_shape == (2, 5, 5)
    assert data.x_train[0, 1, 1, 2, 2] == 255 and data.x_train[1, 0, 0, 0, 0] == 7


def test_a_folder_of_recordings_is_read_once_into_the_cache(tmp_path: Path) -> None:
    info = get_task("nmnist")
    root = _nmnist_folder(tmp_path / "N-MNIST")
    cache = tmp_path / "cache"
    options = info.options(time_bins=5)
    first = prepare(info, options, 0, data_path=root, cache_dir=cache)
    (cached,) = cache.glob("nmnist-*.npz")
    stamp = cached.stat().st_mtime_ns
    second = prepare(info, options, 0, data_path=root, cache_dir=cache)
    assert cached.stat().st_mtime_ns == stamp  # read from the cache, not written again
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert second.x_train.dtype == np.uint8 and second.time_bins == 5
    shutil.copyfile(SAMPLE, root / "Test" / "3" / "extra.bin")  # a new recording: read again
    third = prepare(info, options, 0, data_path=root, cache_dir=cache)
    assert len(third.x_test) == 11 and len(list(cache.glob("nmnist-*.npz"))) == 2


def _aedat(events: list[tuple[int, int, int, int]], valid: list[bool]) -> bytes:
    """An AEDAT 3.1 file: header lines, a special-event packet (skipped), then the polarity
    events (x, y, p, t) in two packets."""

    def packet(kind: int, body: np.ndarray, n: int) -> bytes:
        # type, source, event size, timestamp offset, overflow, capacity, number, valid
        head = np.array([kind, 1], "<i2").tobytes() + np.array([8, 4, 0, n, n, n], "<i4").tobytes()
        return head + body.astype("<u4").tobytes()

    addr = [
        (x << 17) | (y << 2) | (p << 1) | int(v)
        for (x, y, p, _), v in zip(events, valid, strict=True)
    ]
    pairs = np.array([[a, e[3]] for a, e in zip(addr, events, strict=True)], dtype=np.int64)
    half = len(pairs) // 2
    return (
        b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n"
        + packet(0, np.array([[0, 7]]), 1)
        + packet(1, pairs[:half], half)
        + packet(1, pairs[half:], len(pairs) - half)
    )


def test_dvs_gesture_aedat_recordings_give_one_sample_per_labelled_gesture(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(2)
    info = get_task("dvs-gesture")
    train, test = [], []
    for user in range(3):
        name = f"user{user + 1:02d}_led.aedat"
        (test if user == 2 else train).append(name)
        n = 400
        t = np.sort(rng.integers(0, 3_000_000, n))
        events = list(
            zip(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n), t,
                strict=True)
        )  # fmt: skip
        valid = [True] * (n - 1) + [False]  # the last event is marked invalid: dropped
        (tmp_path / name).write_bytes(_aedat(events, valid))
        rows = [
            f"{c},{s},{s + 900_000}" for c, s in ((c, (c - 1) * 250_000) for c in range(1, 12))
        ]
        (tmp_path / f"user{user + 1:02d}_led_labels.csv").write_text(
            "class,startTime_usec,endTime_usec\n" + "\n".join(rows) + "\n"
        )
    (tmp_path / "trials_to_train.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "trials_to_test.txt").write_text("\n".join(test) + "\n")

    ev = decode_aedat((tmp_path / test[0]).read_bytes())
    assert len(ev["t"]) == 399 and ev["x"].max() < 128 and set(ev["p"].tolist()) <= {0, 1}
    options = info.options(time_bins=6, duration_ms=500.0, downsample=8, val_fraction=0.4)
    data = prepare(info, options, 0, data_path=tmp_path)
    assert data.input_shape == (2, 16, 16) and data.time_bins == 6
    assert data.y_test.tolist() == list(range(11))
    # each gesture holds the recording's valid events in [start, start + 500 ms)
    t_all, start = ev["t"], 4 * 250_000
    inside = int(((t_all >= start) & (t_all < start + 500_000)).sum())
    assert int(data.x_test[4].sum(dtype=np.int64)) == inside > 0
