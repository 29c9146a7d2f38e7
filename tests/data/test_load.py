import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bastion.data import load_dataset
from bastion.errors import (
    ConfigError,
    InputNotFoundError,
    InvalidDataError,
    UnreadableInputError,
    UnsupportedFormatError,
)


def test_npz_features_labels_and_kind(tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    np.savez(tmp_path / "d.npz", X=x, labels=np.array([0, 1, 2, 0, 1, 2]))
    ds = load_dataset(tmp_path / "d.npz")
    np.testing.assert_array_equal(ds.x, x)
    assert ds.y is not None and ds.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert ds.kind == "tabular" and ds.n_classes == 3
    np.savez(tmp_path / "img.npz", x=np.zeros((2, 1, 8, 8)), y=np.array([0.0, 1.0]))
    img = load_dataset(tmp_path / "img.npz")
    assert img.kind == "image" and img.y is not None and img.y.dtype == np.int64


def test_npz_arrays_named_by_the_caller_and_kind_override(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", pixels=np.zeros((3, 2)), outcome=np.array([2, 0, 1]))
    ds = load_dataset(tmp_path / "d.npz", x_key="pixels", y_key="outcome", kind="other")
    assert ds.kind == "other" and ds.y is not None and ds.y.tolist() == [2, 0, 1]
    with pytest.raises(InvalidDataError, match="no array 'labels'"):
        load_dataset(tmp_path / "d.npz", x_key="pixels", y_key="labels")
    with pytest.raises(ConfigError, match="kind"):
        load_dataset(tmp_path / "d.npz", x_key="pixels", kind="audio")  # type: ignore[arg-type]


def test_npy_is_features_only(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((4, 1, 3, 3), np.float32))
    ds = load_dataset(tmp_path / "f.npy")
    assert ds.y is None and ds.kind == "image" and ds.sample_shape == (1, 3, 3)
    np.save(tmp_path / "v.npy", np.arange(5.0))
    assert load_dataset(tmp_path / "v.npy").x.shape == (5, 1)


def test_nan_is_kept_for_the_data_quality_check(tmp_path: Path) -> None:
    x = np.ones((3, 2))
    x[1, 1] = np.nan
    np.save(tmp_path / "f.npy", x)
    assert np.isnan(load_dataset(tmp_path / "f.npy").x).sum() == 1


def test_csv_label_column_strings_become_sorted_classes(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,target\n1,2,dog\n3,4,cat\n5,6,dog\n")
    ds = load_dataset(tmp_path / "t.csv")
    assert ds.class_names == ("cat", "dog")
    assert ds.y is not None and ds.y.tolist() == [1, 0, 1]
    assert ds.feature_names == ("a", "b") and ds.x.shape == (3, 2)


def test_csv_integer_valued_labels_and_nan_features(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,y\n1,,1.0\n3,4,0.0\n")
    ds = load_dataset(tmp_path / "t.csv")
    assert ds.y is not None and ds.y.tolist() == [1, 0] and ds.class_names == ()
    assert np.isnan(ds.x[0, 1]) and ds.feature_names == ("a", "b")


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_csv_delimiters_are_sniffed(tmp_path: Path, sep: str) -> None:
    (tmp_path / "t.csv").write_text(sep.join(["a", "b", "label"]) + "\n" +
                                    sep.join(["1.5", "2", "0"]) + "\n" +
                                    sep.join(["3", "4.25", "1"]) + "\n")
    ds = load_dataset(tmp_path / "t.csv")
    assert ds.feature_names == ("a", "b") and ds.x.tolist() == [[1.5, 2.0], [3.0, 4.25]]


def test_single_column_csv_is_features_only(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a\n1\n2\n3\n")
    ds = load_dataset(tmp_path / "t.csv")
    assert ds.y is None and ds.x.shape == (3, 1)


def test_parquet_with_named_label(tmp_path: Path) -> None:
    import pandas as pd

    pd.DataFrame({"f1": [0.5, 1.5], "outcome": [1, 0]}).to_parquet(tmp_path / "t.parquet")
    ds = load_dataset(tmp_path / "t.parquet", label="outcome")
    assert ds.y is not None and ds.y.tolist() == [1, 0] and ds.feature_names == ("f1",)


def test_image_folder_mixing_grey_and_colour(tmp_path: Path) -> None:
    from PIL import Image

    for cls, mode in (("a", "L"), ("b", "RGB")):
        (tmp_path / cls).mkdir()
        Image.new(mode, (3, 2), 255 if mode == "L" else (255, 0, 0)).save(tmp_path / cls / "i.png")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    ds = load_dataset(tmp_path)
    assert ds.x.shape == (2, 3, 2, 3) and ds.class_names == ("a", "b")
    assert ds.x[0].min() == 1.0 and ds.x[1, 0].max() == 1.0 and ds.x[1, 1].max() == 0.0


def test_image_folder_with_mixed_sizes_or_broken_files(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.new("L", (3, 2)).save(tmp_path / "a" / "1.png")
    Image.new("L", (4, 2)).save(tmp_path / "a" / "2.png")
    with pytest.raises(InvalidDataError, match="different sizes"):
        load_dataset(tmp_path)
    (tmp_path / "a" / "2.png").write_bytes(b"not a png")
    with pytest.raises(InvalidDataError, match="not a readable image"):
        load_dataset(tmp_path)


def test_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    for cls, value in (("cat", 0), ("dog", 255)):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.full((4, 5), value, np.uint8)).save(tmp_path / cls / "a.png")
    ds = load_dataset(tmp_path)
    assert ds.x.shape == (2, 1, 4, 5) and ds.kind == "image"
    assert ds.x.max() == 1.0 and ds.x.min() == 0.0
    assert ds.class_names == ("cat", "dog") and ds.y is not None and ds.y.tolist() == [0, 1]


def _npy(p: Path, arr: np.ndarray) -> None:
    with p.open("wb") as f:  # np.save(path) would append .npy to the name
        np.save(f, arr)


def _corrupt_npz(p: Path) -> None:
    np.savez(p, x=np.zeros((2, 2)))
    p.write_bytes(p.read_bytes().replace(b"'descr'", b"'dxscr'"))  # CRC no longer matches


def _object_npz(p: Path) -> None:
    np.savez(p, x=np.array([{"a": 1}, None], dtype=object))


@pytest.mark.parametrize(
    ("make", "error", "needle"),
    [
        (lambda p: None, InputNotFoundError, "does not exist"),
        (lambda p: p.write_bytes(b""), InvalidDataError, "empty"),
        (lambda p: p.write_bytes(bytes(range(256)) * 8), UnsupportedFormatError, "npz, npy"),
        (_object_npz, InvalidDataError, "object array"),
        (lambda p: np.savez(p, x=np.zeros((0, 3))), InvalidDataError, "no samples"),
        (lambda p: np.savez(p, w=np.zeros((2, 3))), InvalidDataError, "name the features"),
        (lambda p: np.savez(p, x=np.zeros((3, 2)), y=np.array([0, 1])), InvalidDataError,
         "one integer label per sample"),
        (lambda p: np.savez(p, x=np.zeros((2, 2)), y=np.array([0, -1])), InvalidDataError,
         ">= 0"),
        (lambda p: np.savez(p, x=np.zeros((2, 2)), y=np.array([0.5, 1.0])), InvalidDataError,
         "integers"),
        (lambda p: p.write_text("a,b,label\n1,x,0\n2,y,1\n"), InvalidDataError,
         "feature columns b are not numeric"),
        (lambda p: p.write_text("a,label\n1,-1\n2,1\n"), InvalidDataError, ">= 0"),
        (lambda p: p.write_text("a,target\n1,0.5\n2,1.5\n"), InvalidDataError, "fractional"),
        (lambda p: p.write_text("a,class\n1,cat\n2,\n"), InvalidDataError, "missing values"),
        (lambda p: _npy(p, np.array([{"a": 1}], dtype=object)), InvalidDataError,
         "object array"),
        (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'     \n"),
         UnreadableInputError, "damaged npy"),
        (_corrupt_npz, UnreadableInputError, "damaged npz"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path: Path, make: Callable[[Path], object],
                                         error: type[Exception], needle: str) -> None:
    path = tmp_path / "data.npz"
    make(path)
    with pytest.raises(error) as info:
        load_dataset(path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_folder_without_class_folders(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInputError, match="class sub-folders"):
        load_dataset(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidDataError, match="no images"):
        load_dataset(tmp_path)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableInputError, match="not a regular file"):
        load_dataset(fifo)
