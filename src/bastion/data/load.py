"""Load a dataset from a file or folder, the format told by content, not by name.

Supported: numpy ``.npy`` (features only) and ``.npz`` (features and labels), CSV and
Parquet tables (one label column), and image folders (``root/<class>/<image>``).
``np.load`` always runs with ``allow_pickle=False``: an object array is refused.

Encodings, fixed so the same file always gives the same arrays: numeric labels must
be class indices (integers >= 0); text labels become indices of their sorted names,
kept as ``class_names``; feature columns must be numeric (a text column is refused by
name rather than guessed at); CSV separators are sniffed; images become float32
``(n, c, h, w)`` in [0, 1], one channel for grey, three for colour.

NaN and inf are kept: the data-quality check reports them, and
``validate_for_model`` refuses them when a model has to score the data.
"""

from __future__ import annotations

import tokenize
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import get_args

import numpy as np

from bastion.data.dataset import Dataset, Kind
from bastion.data.validate import as_labels
from bastion.errors import (
    ConfigError,
    InputNotFoundError,
    InvalidDataError,
    NonNumericFeaturesError,
    UnreadableInputError,
    UnsupportedFormatError,
)
from bastion.formats import Format, detect_format

__all__ = ["SUPPORTED", "load_dataset"]

SUPPORTED = "npz, npy, csv, parquet or a folder of class sub-folders of images"
_X_KEYS = ("x", "X", "features", "data", "inputs")
_Y_KEYS = ("y", "Y", "labels", "label", "target", "targets")
_LABEL_COLUMNS = ("label", "target", "y", "class")
# What numpy raises on a truncated file or a mangled header (its parser tokenizes and
# literal_evals the header text); object arrays raise ValueError and are told apart.
_DAMAGED = (OSError, EOFError, SyntaxError, tokenize.TokenError)
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_dataset(
    path: str | Path,
    *,
    label: str | None = None,
    kind: Kind | None = None,
    x_key: str | None = None,
    y_key: str | None = None,
) -> Dataset:
    """Read ``path`` into a :class:`Dataset`; one-line errors for every bad input.

    ``label`` names the label column of a table (default: the first of label, target,
    y, class). ``x_key``/``y_key`` name the arrays of an npz (default: the first of
    x, X, features, data, inputs and y, Y, labels, label, target, targets). ``kind``
    overrides the guess (image for arrays of rank 3 or more and image folders,
    tabular for tables and 2-D arrays).
    """
    if kind is not None and kind not in get_args(Kind):
        raise ConfigError(f"kind {kind!r} must be one of {', '.join(get_args(Kind))}")
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"data file {path} does not exist: check the path")
    ds = _images(path) if path.is_dir() else _file(path, label, x_key, y_key)
    if len(ds) == 0:
        raise InvalidDataError(f"data file {path} has no samples: give a non-empty dataset")
    return ds if kind is None else replace(ds, kind=kind)


def _file(path: Path, label: str | None, x_key: str | None, y_key: str | None) -> Dataset:
    fmt = detect_format(path)
    match fmt:
        case Format.NUMPY_NPZ:
            return _npz(path, x_key, y_key)
        case Format.NUMPY_NPY:
            x = _features(path, _read_npy(path))
            return Dataset(x=x, kind=_array_kind(x), name=path.stem, path=path)
        case Format.CSV | Format.TEXT:
            return _table(path, label, csv=True)
        case Format.PARQUET:
            return _table(path, label, csv=False)
        case Format.EMPTY:
            raise InvalidDataError(f"data file {path} is empty: give a file with samples")
        case _:
            raise UnsupportedFormatError(
                f"data file {path} is {fmt.value}, not a dataset bastion reads ({SUPPORTED})"
            )


def _array_kind(x: np.ndarray) -> Kind:
    return "image" if x.ndim >= 3 else "tabular"


def _object_array(path: Path) -> InvalidDataError:
    return InvalidDataError(
        f"{path} holds an object array, which could run code when loaded: "
        "save numeric arrays only"
    )


def _read_npy(path: Path) -> np.ndarray:
    try:
        arr: np.ndarray = np.load(path, allow_pickle=False)
    except ValueError as err:  # numpy refuses object arrays when allow_pickle=False
        if "allow_pickle" in str(err):
            raise _object_array(path) from None
        raise UnreadableInputError(f"{path} is a damaged npy file: re-save it") from None
    except _DAMAGED:
        raise UnreadableInputError(f"{path} is a damaged npy file: re-save it") from None
    return arr


def _features(path: Path, arr: np.ndarray) -> np.ndarray:
    if arr.dtype == object:
        raise _object_array(path)
    if arr.ndim == 0:
        raise InvalidDataError(f"{path} holds a scalar, not samples: save an array (n, ...)")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidDataError(f"{path} holds {arr.dtype} values: features must be numeric")
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def _pick(keys: list[str], wanted: tuple[str, ...]) -> str | None:
    return next((k for k in wanted if k in keys), None)


def _npz(path: Path, x_key: str | None, y_key: str | None) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            xk = x_key or _pick(keys, _X_KEYS)
            yk = y_key or _pick(keys, _Y_KEYS)
            for wanted in (x_key, y_key):
                if wanted is not None and wanted not in keys:
                    raise InvalidDataError(
                        f"{path} has no array {wanted!r}; it has {', '.join(keys) or 'none'}"
                    )
            if xk is None:
                raise InvalidDataError(
                    f"{path} has arrays {', '.join(keys) or 'none'}; name the features "
                    f"one of {', '.join(_X_KEYS)}"
                )
            x = _features(path, archive[xk])
            y = as_labels(archive[yk], len(x), str(path)) if yk else None
    except InvalidDataError:
        raise
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise _object_array(path) from None
        raise UnreadableInputError(f"{path} is a damaged npz file: re-save it") from None
    except (zipfile.BadZipFile, *_DAMAGED):
        raise UnreadableInputError(f"{path} is a damaged npz file: re-save it") from None
    return Dataset(x=x, y=y, kind=_array_kind(x), name=path.stem, path=path)


def _delimiter(path: Path) -> str:
    """The field separator (comma, semicolon, tab or bar) sniffed from the first lines."""
    import csv

    with path.open(newline="", errors="replace") as f:
        head = f.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or nothing to tell apart
        return ","


def _table(path: Path, label: str | None, *, csv: bool) -> Dataset:
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=_delimiter(path)) if csv else pd.read_parquet(path)
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
        if values.isna().any():
            raise InvalidDataError(
                f"{path}: label column {column!r} has missing values; label every row"
            )
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            y = as_labels(values.to_numpy(), len(values), f"{path} column {column!r}")
        else:  # class names: sorted, so the same names give the same indices every time
            names = sorted(values.astype(str).unique())
            y = values.astype(str).map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
            class_names = tuple(names)
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise NonNumericFeaturesError(
            f"{path}: feature columns {', '.join(bad[:5])}{more} are not numeric; encode "
            "them as numbers (one-hot or ordinal) or name the label column with --label"
        )
    x = frame.to_numpy(np.float64).astype(np.float32)
    return Dataset(x=x, y=y, kind="tabular", feature_names=tuple(map(str, frame.columns)),
                   class_names=class_names, name=path.stem, path=path)


def _images(root: Path) -> Dataset:
    """``root/<class>/<image>`` to float32 ``(n, c, h, w)`` in [0, 1].

    Grey images stay one channel; when a folder mixes grey and colour, grey images
    are repeated to three channels (what PIL's ``convert("RGB")`` would do).
    """
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UnreadableInputError(
            f"{root} is a folder without class sub-folders: give a data file or a folder "
            "laid out as root/<class>/<image>"
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() in _IMAGE_SUFFIXES:
                images.append(_read_image(file))
                labels.append(index)
    if not images:
        raise InvalidDataError(
            f"{root} has no images ({', '.join(sorted(_IMAGE_SUFFIXES))}) in its class folders"
        )
    if len({a.shape[0] for a in images}) > 1:
        images = [np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a for a in images]
    shapes = sorted({a.shape[1:] for a in images})
    if len(shapes) > 1:
        raise InvalidDataError(
            f"{root}: images have different sizes {shapes[:3]} (height, width); "
            "resize them to one size"
        )
    x = np.stack(images).astype(np.float32) / 255.0
    return Dataset(x=x, y=np.asarray(labels, np.int64), kind="image",
                   class_names=tuple(classes), name=root.name, path=root)


def _read_image(file: Path) -> np.ndarray:
    """One image as uint8 ``(c, h, w)``, c = 1 for grey and 3 for colour."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            arr = np.asarray(img.convert("L" if img.mode in ("L", "1") else "RGB"))
    except (UnidentifiedImageError, OSError):
        raise InvalidDataError(f"{file} is not a readable image: remove or replace it") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
