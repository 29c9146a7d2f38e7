"""Load a dataset from a file or folder, the format told by content, not by name.

Supported: numpy ``.npy`` (features only) and ``.npz`` (features and labels), CSV and
Parquet tables (one label column), and image folders (``root/<class>/<image>``).
``np.load`` always runs with ``allow_pickle=False``: an object array is refused.
NaN and inf are kept: the data-quality check reports them, and
``validate_for_model`` refuses them when a model has to score the data.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from bastion.data.dataset import Dataset
from bastion.errors import (
    InputNotFoundError,
    InvalidDataError,
    UnreadableInputError,
    UnsupportedFormatError,
)
from bastion.formats import Format, detect_format

__all__ = ["SUPPORTED", "load_dataset"]

SUPPORTED = "npz, npy, csv, parquet or a folder of class sub-folders of images"
_X_KEYS = ("x", "X", "features", "data", "inputs")
_Y_KEYS = ("y", "Y", "labels", "label", "target", "targets")
_LABEL_COLUMNS = ("label", "target", "y", "class")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_dataset(path: str | Path, *, label: str | None = None) -> Dataset:
    """Read ``path`` into a :class:`Dataset`; one-line errors for every bad input."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"data file {path} does not exist: check the path")
    if path.is_dir():
        return _images(path)
    fmt = detect_format(path)
    match fmt:
        case Format.NUMPY_NPZ:
            ds = _npz(path)
        case Format.NUMPY_NPY:
            ds = Dataset(x=_npy(path, np.load(path, allow_pickle=False)), kind="other",
                         name=path.stem, path=path)
        case Format.CSV | Format.TEXT:
            ds = _table(path, label, csv=True)
        case Format.PARQUET:
            ds = _table(path, label, csv=False)
        case Format.EMPTY:
            raise InvalidDataError(f"data file {path} is empty: give a file with samples")
        case _:
            raise UnsupportedFormatError(
                f"data file {path} is {fmt.value}, not a dataset bastion reads ({SUPPORTED})"
            )
    if len(ds) == 0:
        raise InvalidDataError(f"data file {path} has no samples: give a non-empty dataset")
    return ds


def _npy(path: Path, arr: np.ndarray) -> np.ndarray:
    if arr.dtype == object:
        raise InvalidDataError(
            f"{path} holds an object array, which could run code when loaded: "
            "save numeric arrays only"
        )
    if arr.ndim == 0:
        raise InvalidDataError(f"{path} holds a scalar, not samples: save an array (n, ...)")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidDataError(f"{path} holds {arr.dtype} values: features must be numeric")
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def _pick(keys: list[str], wanted: tuple[str, ...]) -> str | None:
    return next((k for k in wanted if k in keys), None)


def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            x_key = _pick(keys, _X_KEYS)
            if x_key is None:
                raise InvalidDataError(
                    f"{path} has arrays {', '.join(keys) or 'none'}; name the features "
                    f"one of {', '.join(_X_KEYS)}"
                )
            x = _npy(path, archive[x_key])
            y_key = _pick(keys, _Y_KEYS)
            y = _labels(path, archive[y_key], len(x)) if y_key else None
    except InvalidDataError:
        raise
    except ValueError as err:  # numpy refuses object arrays when allow_pickle=False
        raise InvalidDataError(
            f"{path} holds an object array, which could run code when loaded: "
            "save numeric arrays only"
        ) from err
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise UnreadableInputError(f"{path} is a damaged npz file: {err}") from None
    return Dataset(x=x, y=y, kind="image" if x.ndim >= 3 else "tabular", name=path.stem,
                   path=path)


def _labels(path: Path, raw: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(raw).reshape(-1) if np.asarray(raw).ndim > 1 and raw.shape[-1] == 1 else raw
    if y.ndim != 1 or len(y) != n:
        raise InvalidDataError(
            f"{path}: labels have shape {tuple(raw.shape)} but there are {n} samples; "
            "give one integer label per sample"
        )
    if y.dtype.kind == "f" and np.isfinite(y).all() and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub":
        raise InvalidDataError(f"{path}: labels must be integers, got {y.dtype}")
    if len(y) and y.min() < 0:
        raise InvalidDataError(f"{path}: labels must be >= 0, found {int(y.min())}")
    return y.astype(np.int64)


def _table(path: Path, label: str | None, *, csv: bool) -> Dataset:
    import pandas as pd

    try:
        frame = pd.read_csv(path) if csv else pd.read_parquet(path)
    except UnicodeDecodeError:
        raise InvalidDataError(f"{path} is not UTF-8 text: save the CSV as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InvalidDataError(f"{path} could not be parsed as a table: {first}") from None
    column = label or next((c for c in _LABEL_COLUMNS if c in frame.columns), None)
    if label is not None and label not in frame.columns:
        raise InvalidDataError(
            f"{path} has no column {label!r}; columns are {', '.join(map(str, frame.columns))}"
        )
    y: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    if column is not None:
        values = frame.pop(column)
        if pd.api.types.is_integer_dtype(values) and (values >= 0).all():
            y = values.to_numpy(np.int64)
        else:
            if values.isna().any():
                raise InvalidDataError(f"{path}: label column {column!r} has missing values")
            names = sorted(values.astype(str).unique())
            y = values.astype(str).map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
            class_names = tuple(names)
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise InvalidDataError(
            f"{path}: columns {', '.join(bad[:5])} are not numeric; encode them as numbers "
            "or name the label column with --label"
        )
    x = frame.to_numpy(np.float64).astype(np.float32)
    return Dataset(x=x, y=y, kind="tabular", feature_names=tuple(map(str, frame.columns)),
                   class_names=class_names, name=path.stem, path=path)


def _images(root: Path) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise UnreadableInputError(
            f"{root} is a folder without class sub-folders: give a data file or a folder "
            "laid out as root/<class>/<image>"
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as img:
                    arr = np.asarray(img.convert("RGB" if img.mode not in ("L", "1") else "L"))
            except (UnidentifiedImageError, OSError):
                raise InvalidDataError(f"{file} is not a readable image") from None
            images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            labels.append(index)
    if not images:
        raise InvalidDataError(f"{root} has no images in its class folders")
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise InvalidDataError(
            f"{root}: images have different sizes {sorted(shapes)[:3]}; resize them to one size"
        )
    x = np.stack(images).astype(np.float32) / 255.0
    return Dataset(x=x, y=np.asarray(labels, np.int64), kind="image",
                   class_names=tuple(classes), name=root.name, path=root)
