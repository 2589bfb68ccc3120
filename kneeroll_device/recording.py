"""Recordings: the one interchange format (ARCHITECTURE.md).

A recording is a folder with ``imu.csv`` (``t,ax,ay,az[,gx,gy,gz]``: seconds,
g, deg/s), an optional ``force.csv`` (``t,force``: seconds, newtons) and
``meta.json``; ``.csv.gz`` is read wherever ``.csv`` is. A lone IMU CSV is a
recording too. Anything malformed is a RecordingError naming the file, the
line or column, and what was expected.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .atomic import write_atomically
from .errors import RecordingError
from .pipeline.framing import forward_mask

IMU_COLUMNS = ("t", "ax", "ay", "az")
# Times are written to 0.1 ms ("%.4f"). The daemon puts every sample's time on this grid
# before the pipeline or the recorder sees it (on_time_grid), so a recording holds exactly
# the times the live run used, and two samples closer than the grid can never print alike.
TIME_RESOLUTION_S = 1e-4
GYRO_COLUMNS = ("gx", "gy", "gz")
FORCE_COLUMNS = ("t", "force")
SCAN_LINES = 20_000  # lines checked at a time when a CSV is read as it streams (some 1.3 MB of text)


@dataclass
class Recording:
    path: Path
    imu_t: np.ndarray
    accel: np.ndarray
    gyro: np.ndarray | None
    force_t: np.ndarray | None = None
    force: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        starts, ends = [self.imu_t[0]], [self.imu_t[-1]]
        if self.force_t is not None and len(self.force_t):
            starts.append(self.force_t[0])
            ends.append(self.force_t[-1])
        return float(max(ends) - min(starts))

    @property
    def truth(self) -> dict | None:
        return self.meta.get("truth")

    @property
    def cut_short(self) -> dict | None:
        """Why the samples end before the session did (a disk near full, a crash), when they do."""
        cut = self.meta.get("cut_short")
        return cut if isinstance(cut, dict) else None


def _open_text(path: Path):
    # utf-8-sig: spreadsheets often start a CSV with a byte-order mark
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_csv_columns(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Named float columns of a CSV with a header line; clear errors for every way it can be wrong."""
    try:
        with _open_text(path) as handle:
            header = _header(path, handle.readline(), required, optional)
            data = _body(path, handle)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise _unreadable(path, exc) from None
    if data is None:
        raise _malformed(path, header)
    wanted = [c for c in required + optional if c in header]
    if data.size == 0:
        raise _no_samples(path)
    if data.shape[1] != len(header):
        raise RecordingError(f"{path} has {data.shape[1]} values a line but {len(header)} columns in its header")
    if not np.all(np.isfinite(data[:, [header.index(c) for c in wanted]])):
        row = int(np.argwhere(~np.isfinite(data[:, [header.index(c) for c in wanted]]))[0, 0]) + 2
        raise RecordingError(f"{path} line {row} has a value that is not a finite number")
    columns = {c: data[:, header.index(c)] for c in wanted}
    t = columns["t"]
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        row = int(np.argmax(np.diff(t) <= 0)) + 3
        raise RecordingError(f"{path} line {row}: time does not increase", "sort the samples by t and drop duplicates")
    return columns


def _body(path: Path, handle) -> np.ndarray | None:
    """The numbers below the header (``handle`` is past it), or None if numpy would not parse
    them. A .csv or .csv.gz numpy opens again itself and parses a chunk at a time: a sixth
    faster than from the open handle, which it reads a line at a time (and a third faster
    than reading it into a string first). Any other name is read from the handle: numpy
    would take a file named .bz2, .xz or .lzma for one compressed so."""
    source, header_lines = (path, 1) if path.suffix in (".csv", ".gz") else (handle, 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # (an empty body: said by the caller)
            return np.loadtxt(source, delimiter=",", ndmin=2, dtype=float, skiprows=header_lines, encoding="utf-8")
    except ValueError:
        return None


def _unreadable(path: Path, exc: Exception) -> RecordingError:
    return RecordingError(f"{path} cannot be read: {exc}", "check that it is a CSV file (gzip if it ends in .gz)")


def _no_samples(path: Path) -> RecordingError:
    return RecordingError(f"{path} has no samples", "record at least a few seconds")


def _malformed(path: Path, header: list[str]) -> RecordingError:
    """What is wrong with a CSV body numpy would not parse (it is read again to say where)."""
    try:
        with _open_text(path) as handle:
            handle.readline()
            body = handle.read()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        return _unreadable(path, exc)
    if not body.strip():
        return _no_samples(path)
    return RecordingError(f"{path} has a malformed line: {_first_bad_line(body, header)}",
                          "every line needs one number per column")


def _header(path: Path, header_line: str, required: tuple[str, ...], optional: tuple[str, ...]) -> list[str]:
    """The CSV's column names, lower case; an error if a required one is missing or only some optional ones are there."""
    header = [h.strip().lower() for h in header_line.strip().split(",")]
    missing = [c for c in required if c not in header]
    if missing:
        raise RecordingError(
            f"{path} has no column {', '.join(missing)} (header: {header_line.strip() or 'empty'})",
            "the first line must name the columns: " + ",".join(required + optional),
        )
    if optional and 0 < sum(c in header for c in optional) < len(optional):
        absent = [c for c in optional if c not in header]
        raise RecordingError(f"{path} has only some of the gyro columns (no {', '.join(absent)})", "give all of gx,gy,gz or none")
    return header


def iter_csv_blocks(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = (),
                    lines: int = SCAN_LINES) -> Iterator[dict[str, np.ndarray]]:
    """The CSV's named float columns, ``lines`` lines at a time, checked as read_csv_columns checks
    the whole file (the same errors), in memory bounded by one block however long the file is."""
    try:
        with _open_text(path) as handle:
            header = _header(path, handle.readline(), required, optional)
            wanted = [c for c in required + optional if c in header]
            before, last_t, rows = 1, -math.inf, 0  # lines read so far (the header is line 1)
            while block := list(itertools.islice(handle, lines)):
                columns = _check_block(path, block, before, header, wanted, last_t)
                before += len(block)
                if columns:
                    last_t = float(columns["t"][-1])
                    rows += len(columns["t"])
                    yield columns
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise _unreadable(path, exc) from None
    if not rows:
        raise _no_samples(path)


def _check_block(path: Path, block: list[str], before: int, header: list[str], wanted: list[str],
                 last_t: float) -> dict[str, np.ndarray] | None:
    """One block of a CSV's lines as columns (None if it holds no samples); ``before``: lines read before it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a block of blank lines only: no samples, not a warning
            data = np.loadtxt(block, delimiter=",", ndmin=2, dtype=float)
    except ValueError:
        raise RecordingError(f"{path} has a malformed line: {_first_bad_line(''.join(block), header, before + 1)}",
                             "every line needs one number per column") from None
    if data.size == 0:
        return None
    if data.shape[1] != len(header):
        raise RecordingError(f"{path} has {data.shape[1]} values a line but {len(header)} columns in its header")
    values = data[:, [header.index(c) for c in wanted]]
    if not np.all(np.isfinite(values)):
        row = int(np.argwhere(~np.isfinite(values))[0, 0])
        raise RecordingError(f"{path} line {_line_of_row(block, before, row)} has a value that is not a finite number")
    columns = {c: data[:, header.index(c)] for c in wanted}
    steps = np.diff(np.concatenate([[last_t], columns["t"]]))
    if np.any(steps <= 0):
        row = int(np.argmax(steps <= 0))
        raise RecordingError(f"{path} line {_line_of_row(block, before, row)}: time does not increase",
                             "sort the samples by t and drop duplicates")
    return columns


def _line_of_row(block: list[str], before: int, row: int) -> int:
    """The file's line number of a block's row of samples (blank lines and comments hold none)."""
    numbers = [before + 1 + i for i, line in enumerate(block) if line.split("#", 1)[0].strip()]
    return numbers[row]


def _first_bad_line(body: str, header: list[str], first_number: int = 2) -> str:
    """Where the CSV body first breaks, by the file's own line numbers (the header is line 1)."""
    for number, line in enumerate(body.splitlines(), start=first_number):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != len(header):
            return f"line {number} has {len(fields)} values, the header names {len(header)} columns"
        for name, value in zip(header, fields):
            try:
                float(value)
            except ValueError:
                return f"line {number}, column {name}: {value.strip()!r} is not a number"
    return "a line could not be read as numbers"


def read_recording(path: str | Path) -> Recording:
    """A recording folder, or a lone IMU CSV."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if path.is_file():
        imu = read_csv_columns(path, IMU_COLUMNS, GYRO_COLUMNS)
        return _recording(path, imu, None, {})
    raise RecordingError(f"{path} does not exist", "give a recording folder or an IMU CSV file")


def _read_folder(folder: Path) -> Recording:
    imu_file = _find(folder, "imu")
    if imu_file is None:
        raise RecordingError(f"recording {folder} has no imu.csv or imu.csv.gz", "a recording folder needs at least imu.csv")
    imu = read_csv_columns(imu_file, IMU_COLUMNS, GYRO_COLUMNS)
    force_file = _find(folder, "force")
    force = read_csv_columns(force_file, FORCE_COLUMNS) if force_file else None
    meta: dict = {}
    meta_file = folder / "meta.json"
    if meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError) as exc:
            raise RecordingError(f"{meta_file} is not valid JSON: {exc}", "fix or remove meta.json") from None
        if not isinstance(meta, dict):
            raise RecordingError(f"{meta_file} must hold a JSON object")
        _check_meta(meta_file, meta)
    return _recording(folder, imu, force, meta)


def _check_meta(meta_file: Path, meta: dict) -> None:
    """The parts of meta.json that replay relies on: button presses and the truth's steps."""
    truth = meta.get("truth")
    controls = meta.get("controls", (truth or {}).get("controls") if isinstance(truth, dict) else None)
    if truth is not None and not (isinstance(truth, dict) and isinstance(truth.get("steps", []), list)
                                  and all(isinstance(s, dict) for s in truth.get("steps", []))):
        raise RecordingError(f"{meta_file}: 'truth' must be an object with a list of step objects", "fix or remove it")
    if controls is None:
        return
    ok = isinstance(controls, list) and all(
        isinstance(c, list) and len(c) == 2 and isinstance(c[0], (int, float)) and not isinstance(c[0], bool)
        and math.isfinite(c[0]) and c[1] in ("press", "hold") for c in controls)
    if not ok:
        raise RecordingError(f"{meta_file}: 'controls' must be a list of [seconds, \"press\" or \"hold\"]",
                             "fix or remove it")


def _recording(path: Path, imu: dict, force: dict | None, meta: dict) -> Recording:
    accel = np.column_stack([imu["ax"], imu["ay"], imu["az"]])
    gyro = np.column_stack([imu["gx"], imu["gy"], imu["gz"]]) if "gx" in imu else None
    return Recording(
        path=path, imu_t=imu["t"], accel=accel, gyro=gyro,
        force_t=force["t"] if force else None, force=force["force"] if force else None, meta=meta,
    )


def on_time_grid(t: np.ndarray) -> np.ndarray:
    """Times rounded to the recording's resolution (whole multiples of TIME_RESOLUTION_S)."""
    return np.round(np.asarray(t, dtype=float) / TIME_RESOLUTION_S) * TIME_RESOLUTION_S


def increasing_on_the_grid(t: np.ndarray, after: float = -np.inf) -> np.ndarray:
    """Which samples keep their written time increasing (past ``after``, a time already
    written): what every reader here insists on."""
    return forward_mask(np.round(np.asarray(t, dtype=float) / TIME_RESOLUTION_S), np.round(after / TIME_RESOLUTION_S))


def imu_header(with_gyro: bool) -> str:
    return ",".join(IMU_COLUMNS + (GYRO_COLUMNS if with_gyro else ()))


FORCE_HEADER = ",".join(FORCE_COLUMNS)


def imu_csv(t, accel, gyro, header: bool = True) -> bytes:
    """IMU samples as the CSV lines every recording holds (the header line first if asked)."""
    columns = [t, *np.asarray(accel).T]
    formats = ["%.4f"] + ["%.6f"] * 3
    if gyro is not None:
        columns += list(np.asarray(gyro).T)
        formats += ["%.4f"] * 3
    return _csv(imu_header(gyro is not None) if header else None, columns, formats)


def force_csv(t, force, header: bool = True) -> bytes:
    """Force samples as the CSV lines every recording holds (the header line first if asked)."""
    return _csv(FORCE_HEADER if header else None, [t, force], ["%.4f", "%.3f"])


def _csv(header: str | None, columns: list[np.ndarray], formats: list[str]) -> bytes:
    text = io.StringIO()
    if header is not None:
        text.write(header + "\n")
    if len(columns[0]):
        np.savetxt(text, np.column_stack(columns), delimiter=",", fmt=formats)
    return text.getvalue().encode("utf-8")


def meta_json(meta: dict) -> bytes:
    """meta.json's text: NaN and infinities as null, NumPy numbers as plain ones."""
    return json.dumps(_jsonable(meta), indent=2).encode("utf-8")


def _write_csv(path: Path, body: bytes, gzip_it: bool) -> Path:
    if gzip_it:
        path = path.with_name(path.name + ".gz")
        body = gzip.compress(body, compresslevel=6)
    write_atomically(path, body)
    return path


def write_recording_folder(out_dir: str | Path, imu_t, accel, gyro, force_t, force, meta: dict, gzip: bool = False) -> Path:
    out = Path(out_dir)
    # a sample whose written time would not increase is one no reader accepts: it is left
    # out here, and counted in meta.json, so the file is always readable (the daemon's
    # samples are on the time grid already, so none of its own are ever left out)
    imu_keep = increasing_on_the_grid(imu_t)
    imu_t, accel = np.asarray(imu_t)[imu_keep], np.asarray(accel)[imu_keep]
    gyro = None if gyro is None else np.asarray(gyro)[imu_keep]
    dropped = int(np.count_nonzero(~imu_keep))
    if force_t is not None:
        force_keep = increasing_on_the_grid(force_t)
        force_t, force = np.asarray(force_t)[force_keep], np.asarray(force)[force_keep]
        dropped += int(np.count_nonzero(~force_keep))
    if dropped:
        meta = dict(meta, samples_left_out=dropped)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(f"cannot create recording folder {out}: {exc.strerror}", "choose a writable --out") from None
    _write_csv(out / "imu.csv", imu_csv(imu_t, accel, gyro), gzip)
    if force_t is not None and len(force_t):
        _write_csv(out / "force.csv", force_csv(force_t, force), gzip)
    # meta.json last: a folder with it is whole
    write_atomically(out / "meta.json", meta_json(meta))
    return out


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
