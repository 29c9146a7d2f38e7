"""Format detection on real files written in tmp_path, with near-misses for each format."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import InputNotFoundError, UnreadableInputError
from bastion.formats import (
    COMPRESSED_FORMATS,
    PICKLE_FORMATS,
    Format,
    decompressor,
    detect_content,
    detect_format,
    sha256_file,
    sniff,
    suffix_mismatch,
    zip_kind,
)

Writer = Callable[[Path], None]


def _bytes(data: bytes) -> Writer:
    def write(p: Path) -> None:
        p.write_bytes(data)

    return write


def _safetensors_bytes(header: dict[str, object], body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _zip(names: dict[str, bytes]) -> Writer:
    def write(p: Path) -> None:
        with zipfile.ZipFile(p, "w") as z:
            for name, data in names.items():
                z.writestr(name, data)

    return write


def _npy(p: Path) -> None:
    np.save(p, np.arange(6.0).reshape(2, 3))


def _npz(p: Path) -> None:
    with p.open("wb") as f:
        np.savez(f, a=np.zeros(3), b=np.ones(2))


def _joblib(compress: object) -> Writer:
    import joblib

    return lambda p: joblib.dump({"w": np.arange(4.0)}, p, compress=compress)


def _onnx(p: Path) -> None:
    from onnx import TensorProto, helper, save_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    save_model(helper.make_model(graph, producer_name="bastion-test"), p)


def _skops(p: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    sio.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), p)


def _hdf5(keras: bool) -> Writer:
    def write(p: Path) -> None:
        import h5py

        with h5py.File(p, "w") as f:
            f.create_dataset("w", data=np.zeros(3))
            if keras:
                f.attrs["keras_version"] = "2.15.0"
                f.attrs["model_config"] = json.dumps({"class_name": "Sequential"})

    return write


def _parquet(p: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1, 2, 3]}), p)


def _tar(p: Path) -> None:
    with tarfile.open(p, "w") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))


_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
# lz4.frame.compress(b"hello"), written out so the table needs no lz4 package
_LZ4_FRAME = bytes.fromhex("04224d1868400500000000000000610500008068656c6c6f00000000")
_ONNX_LIKE_BUT_NOT = bytes([0x08, 0x07, 0x12, 0x02]) + b"hi" + bytes([0x58, 0x01])

# name, writer, expected format. Near-misses sit next to the format they nearly are.
CASES: list[tuple[str, Writer, Format]] = [
    *[(f"p{proto}.pkl", _bytes(pickle.dumps({"a": [1, 2]}, protocol=proto)), Format.PICKLE)
      for proto in range(6)],
    ("proto0.txt", _bytes(pickle.dumps([1, 2], protocol=0)), Format.TEXT),
    ("paren.bin", _bytes(b"(not a pickle at all\n"), Format.TEXT),
    ("legacy.pt", _bytes(_LEGACY_TORCH_MAGIC + pickle.dumps(1, protocol=2)), Format.TORCH_LEGACY),
    ("plain.joblib", _joblib(0), Format.JOBLIB),
    ("z.joblib", _joblib(3), Format.JOBLIB),
    ("g.joblib", _joblib("gzip"), Format.JOBLIB),
    ("b.joblib", _joblib("bz2"), Format.JOBLIB),
    ("x.joblib", _joblib("xz"), Format.JOBLIB),
    ("l.joblib", _joblib("lzma"), Format.JOBLIB),
    ("a.gz", _bytes(gzip.compress(b"hello", mtime=0)), Format.GZIP),
    ("a.bz2", _bytes(bz2.compress(b"hello")), Format.BZ2),
    ("a.xz", _bytes(lzma.compress(b"hello")), Format.XZ),
    ("a.lzma", _bytes(lzma.compress(b"hello", format=lzma.FORMAT_ALONE)), Format.LZMA),
    ("lz4.joblib", _joblib("lz4"), Format.JOBLIB),
    ("a.lz4", _bytes(_LZ4_FRAME), Format.LZ4),
    ("old.joblib", _bytes(b"ZF0x1f".ljust(19) + zlib.compress(pickle.dumps(1, 2))), Format.JOBLIB),
    ("x.txt", _bytes(b"x"), Format.TEXT),
    ("x-marks.txt", _bytes(b"x^ not zlib after all\n"), Format.TEXT),
    ("zlib.bin", _bytes(zlib.compress(b"not a pickle inside")), Format.UNKNOWN),
    ("a.npy", _npy, Format.NUMPY_NPY),
    ("a.npz", _npz, Format.NUMPY_NPZ),
    ("mixed.zip", _zip({"a.npy": b"x", "b.txt": b"y"}), Format.ZIP),
    ("empty.zip", _zip({}), Format.ZIP),
    ("m.safetensors", _bytes(_safetensors_bytes({"w": {"dtype": "F32", "shape": [1],
                                                        "data_offsets": [0, 4]}}, b"\0" * 4)),
     Format.SAFETENSORS),
    ("short.safetensors", _bytes(struct.pack("<Q", 10_000) + b"{}"), Format.UNKNOWN),
    # A header of 896 bytes: its length starts 80 03, like a protocol-3 pickle.
    ("pickle-like.safetensors", _bytes(struct.pack("<Q", 896) + b"{}".ljust(896)),
     Format.SAFETENSORS),
    ("m.onnx", _onnx, Format.ONNX),
    ("no-graph.onnx", _bytes(_ONNX_LIKE_BUT_NOT), Format.UNKNOWN),
    ("m.skops", _skops, Format.SKOPS),
    ("a.h5", _hdf5(keras=False), Format.HDF5),
    ("k.h5", _hdf5(keras=True), Format.KERAS_H5),
    ("m.keras", _zip({"config.json": b"{}", "metadata.json": b"{}",
                      "model.weights.h5": b"\x89HDF\r\n\x1a\n"}), Format.KERAS_V3),
    ("config-only.keras", _zip({"config.json": b"{}"}), Format.ZIP),
    ("m.gguf", _bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0)), Format.GGUF),
    ("m.tflite", _bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 24), Format.TFLITE),
    ("a.parquet", _parquet, Format.PARQUET),
    ("par1.txt", _bytes(b"PAR1 is a word here\n"), Format.TEXT),
    ("a.tar", _tar, Format.TAR),
    ("a.csv", _bytes(b"x1,x2,label\n0.1,0.2,0\n0.3,0.4,1\n"), Format.CSV),
    ("semi.data", _bytes(b"a;b\n1;2\n"), Format.CSV),
    ("quoted.data", _bytes(b'name,note\n"Smith, J","a, b, c"\nLee,x\n'), Format.CSV),
    ("ragged.data", _bytes(b"a,b\n1\n2,3,4\n"), Format.TEXT),
    ("one-column.csv", _bytes(b"label\n0\n1\n"), Format.CSV),
    ("notes.md", _bytes("# héllo\nplain words\n".encode()), Format.TEXT),
    ("empty.bin", _bytes(b""), Format.EMPTY),
    ("noise.bin", _bytes(bytes(range(256)) * 4), Format.UNKNOWN),
]


@pytest.mark.parametrize(("name", "write", "expected"), CASES, ids=[c[0] for c in CASES])
def test_detects_format_by_content(
    tmp_path: Path, name: str, write: Writer, expected: Format
) -> None:
    path = tmp_path / name
    write(path)
    assert detect_format(path) is expected
    # archive members and decompressed streams, in memory, are judged by the same rules
    assert detect_content(path.read_bytes(), path.suffix) is expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PK\x03\x04rest", Format.ZIP),  # any zip: what it holds is told apart later
        (b"\x89HDF\r\n\x1a\n" + b"keras_version", Format.HDF5),
        (b"\x1f\x8b\x08\x00" + gzip.compress(pickle.dumps(1), mtime=0)[4:], Format.GZIP),
        (zlib.compress(pickle.dumps(1)), Format.ZLIB),
        (_LZ4_FRAME, Format.LZ4),
        (b"\x80\x01N.", Format.PICKLE),  # PROTO 1 is unusual but unpickles
        (b"\x80\x04\x95" + b"joblib.numpy_pickle", Format.JOBLIB),
        (b"(dp0\nS'a'\n", None),  # protocol 0 has no header: structure decides
        (b"# model card\n", None),
        (b"x", None),  # one byte is no zlib header
    ],
)
def test_sniff_reads_magic_numbers_only(data: bytes, expected: Format | None) -> None:
    assert sniff(data) is expected


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"archive/data.pkl", "archive/data/0", "archive/version"}, Format.TORCH_ZIP),
        ({"m/data.pkl", "m/constants.pkl", "m/code/__torch__/m.py"}, Format.TORCHSCRIPT),
        ({"m/data.pkl", "m/constants.pkl"}, Format.TORCH_ZIP),  # no code: not TorchScript
        ({"m/archive_format", "m/models/m.json"}, Format.TORCH_EXPORT),
        ({"schema.json", "a.npy"}, Format.SKOPS),
        ({"config.json", "metadata.json"}, Format.KERAS_V3),
        ({"config.json", "model.weights.h5"}, Format.KERAS_V3),
        ({"config.json"}, Format.ZIP),
        ({"a.npy", "b.npy"}, Format.NUMPY_NPZ),
        ({"a.npy", "b.txt"}, Format.ZIP),
        (set(), Format.ZIP),
    ],
)
def test_zip_kind_from_member_names(names: set[str], expected: Format) -> None:
    assert zip_kind(names) is expected


@pytest.mark.parametrize(("name", "write", "expected"), CASES, ids=[c[0] for c in CASES])
def test_suffix_never_decides_a_magic_format(
    tmp_path: Path, name: str, write: Writer, expected: Format
) -> None:
    path = tmp_path / name
    write(path)
    renamed = path.rename(tmp_path / "renamed.dat")
    # Only the headerless ties (text vs protocol-0 pickle, one-column csv) may move.
    if expected not in (Format.TEXT, Format.CSV) and name != "p0.pkl":
        assert detect_format(renamed) is expected


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torch_formats(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch.save(model.state_dict(), tmp_path / "sd.bin")
    torch.save(model.state_dict(), tmp_path / "old.bin", _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(model), tmp_path / "ts.bin")
    torch.export.save(torch.export.export(model, (torch.zeros(2, 4),)), tmp_path / "ex.bin")
    found = {p: detect_format(tmp_path / p) for p in ("sd.bin", "old.bin", "ts.bin", "ex.bin")}
    assert found == {
        "sd.bin": Format.TORCH_ZIP, "old.bin": Format.TORCH_LEGACY,
        "ts.bin": Format.TORCHSCRIPT, "ex.bin": Format.TORCH_EXPORT,
    }


def test_folders(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    (tmp_path / "plain").mkdir()
    assert detect_format(saved) is Format.TF_SAVEDMODEL
    assert detect_format(tmp_path / "plain") is Format.DIRECTORY


def test_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        detect_format(tmp_path / "nope.onnx")
    with pytest.raises(InputNotFoundError):
        sha256_file(tmp_path / "nope.onnx")
    with pytest.raises(UnreadableInputError, match="folder"):
        sha256_file(tmp_path)


def test_permission_denied_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked.bin"
    locked.write_bytes(b"x")

    def denied(self: Path, *args: object, **kw: object) -> None:
        raise PermissionError(13, "Permission denied")

    # chmod 0 does not stop root, which these tests may run as; deny at the open call.
    monkeypatch.setattr(Path, "open", denied)
    for probe in (detect_format, sha256_file):
        with pytest.raises(UnreadableInputError, match=r"Permission denied.*permissions"):
            probe(locked)


@pytest.mark.parametrize(
    ("name", "fmt", "mismatch"),
    [
        ("model.safetensors", Format.PICKLE, True),
        ("model.safetensors", Format.SAFETENSORS, False),
        ("model.pt", Format.TORCHSCRIPT, False),
        ("model.pt", Format.ONNX, True),
        ("model.onnx", Format.ONNX, False),
        ("model.npz", Format.ZIP, True),
        ("model.weird", Format.PICKLE, False),
        ("model.safetensors", Format.EMPTY, False),
    ],
)
def test_suffix_mismatch(name: str, fmt: Format, mismatch: bool) -> None:
    message = suffix_mismatch(name, fmt)
    assert (message is not None) is mismatch
    if message:
        assert str(fmt) in message and "\n" not in message


def test_pickle_formats_cover_every_unpickling_format() -> None:
    assert {Format.PICKLE, Format.TORCH_LEGACY, Format.JOBLIB} == PICKLE_FORMATS


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=0, max_size=3000))
def test_sha256_streams_exactly(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("sha") / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=600))
def test_detection_never_crashes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "blob"
    path.write_bytes(data)
    assert isinstance(detect_format(path), Format)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for probe in (detect_format, sha256_file):
        with pytest.raises(UnreadableInputError, match="not a regular file"):
            probe(fifo)


_MAGICS = [b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00", b"\x78\x9c",
           b"\x80\x04", b"(", b"\x08", b"PAR1", b"\x89HDF\r\n\x1a\n", b"\x93NUMPY", b"GGUF"]


@settings(max_examples=80, deadline=None)
@given(magic=st.sampled_from(_MAGICS), tail=st.binary(max_size=400),
       suffix=st.sampled_from(["", ".pkl", ".csv", ".onnx", ".joblib"]))
def test_truncated_or_corrupt_headers_never_crash(
    tmp_path_factory: pytest.TempPathFactory, magic: bytes, tail: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("magic") / f"blob{suffix}"
    path.write_bytes(magic + tail)
    assert isinstance(detect_format(path), Format)


@pytest.mark.parametrize("fmt", sorted(COMPRESSED_FORMATS - {Format.LZ4}))
def test_decompressor_round_trips(fmt: Format) -> None:
    compress = {Format.GZIP: gzip.compress, Format.BZ2: bz2.compress, Format.XZ: lzma.compress,
                Format.LZMA: lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
                Format.ZLIB: zlib.compress}[fmt]
    stream = decompressor(fmt)
    assert stream.decompress(compress(b"model bytes" * 50)) == b"model bytes" * 50
    assert stream.eof


def test_decompressor_refuses_a_format_that_is_not_compressed() -> None:
    with pytest.raises(ValueError, match="not a compressed format"):
        decompressor(Format.PICKLE)
