"""Which imports a pickle may make: the allowlist, with a sentence per entry saying why.

Anything a pickle imports is judged here by its full dotted name (``module.qualname``):

* **allowed** — listed below with the reason it is safe to import and call while
  unpickling (it builds data and touches no file, process, network or interpreter state);
* **dangerous** — a known way to run code, touch the system or unpickle again: critical;
* **unknown** — everything else: a finding too, because safety is allowlist-first.

A name is allowed only by an exact entry or by one of the narrow patterns in
``ALLOWED_PATTERNS``; a dangerous module poisons every name below it (``os.path.join``
included), so a denylist hit can never be masked by an allowance.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["ALLOWED", "ALLOWED_PATTERNS", "DANGEROUS", "Verdict", "judge", "normalise"]

_NUMPY_RECONSTRUCT = (
    "numpy's array reconstructor: allocates an empty ndarray of a given subtype and "
    "shape; the data arrives later through ndarray.__setstate__ as raw bytes"
)
_TORCH_REBUILD = (
    "torch tensor rebuild helper: wraps an already-loaded storage in a tensor view "
    "(sizes, strides, requires_grad); reads no file and calls no user code"
)
_TORCH_STORAGE = (
    "a torch storage type named in a persistent id; torch.load uses it only to pick "
    "the dtype of bytes it reads from the archive itself"
)
_TORCH_DTYPE = "a torch dtype constant; importing it returns a value and runs nothing"

ALLOWED: dict[str, str] = {
    # -- Python built-in data types ----------------------------------------------------
    "builtins.set": "builds a set from an iterable of already-unpickled values",
    "builtins.frozenset": "builds a frozenset from already-unpickled values",
    "builtins.bytearray": "builds a bytearray from bytes or an int size",
    "builtins.bytes": "builds bytes from already-unpickled values",
    "builtins.slice": "builds a slice object; no side effects",
    "builtins.range": "builds a lazy range object; no side effects",
    "builtins.complex": "builds a complex number from two numbers or a string",
    "builtins.int": "builds an int; pickled by numpy scalars and enums",
    "builtins.float": "builds a float from a number or string",
    "builtins.str": "builds a string",
    "builtins.bool": "builds a bool",
    "builtins.tuple": "builds a tuple from an iterable",
    "builtins.list": "builds a list from an iterable",
    "builtins.dict": "builds a dict from pairs or keywords",
    "builtins.object": "the base class, named by copyreg._reconstructor for plain objects",
    "collections.OrderedDict": "an ordered dict; torch state_dicts are OrderedDicts",
    "collections.defaultdict": (
        "a dict whose default factory is itself a pickled global, judged on its own"
    ),
    "collections.Counter": "a dict of counts; no side effects",
    "collections.deque": "a double-ended queue of already-unpickled values",
    "copyreg._reconstructor": (
        "protocol 0/1 object rebuild: base.__new__(cls, state); cls and base are "
        "pickled globals judged on their own"
    ),
    "_codecs.encode": (
        "protocol 2 stores bytes as _codecs.encode(text, 'latin1'); allowed only with a "
        "literal latin-1 codec (checked at the call)"
    ),
    "datetime.datetime": "a timestamp value type; no side effects",
    "datetime.date": "a date value type",
    "datetime.time": "a time-of-day value type",
    "datetime.timedelta": "a duration value type",
    "datetime.timezone": "a fixed-offset timezone value",
    "decimal.Decimal": "an exact decimal number built from a string",
    "fractions.Fraction": "a rational number built from two ints or a string",
    "uuid.UUID": "a UUID value built from its int or string form",
    "argparse.Namespace": (
        "a plain attribute bag (fairseq and many training scripts store their "
        "hyper-parameters in checkpoints this way)"
    ),
    "pathlib.PosixPath": "a path value; building one touches no file",
    "pathlib.WindowsPath": "a path value; building one touches no file",
    "pathlib.PurePosixPath": "a pure path value; never touches the file system",
    "pathlib.PureWindowsPath": "a pure path value; never touches the file system",
    "enum.Enum": "enum base, named by pickled enum members' class lookups",
    "re._compile": (
        "compiles a regular expression from a pattern string; runs no code "
        "(scikit-learn text vectorizers pickle their token patterns this way)"
    ),
    # -- numpy --------------------------------------------------------------------------
    "numpy.core.multiarray._reconstruct": _NUMPY_RECONSTRUCT,
    "numpy._core.multiarray._reconstruct": _NUMPY_RECONSTRUCT,
    "numpy.ndarray": "the ndarray type, passed to _reconstruct as the subtype to build",
    "numpy.dtype": "builds a dtype descriptor from a type code such as 'f8'",
    "numpy.core.multiarray.scalar": "builds a numpy scalar from a dtype and raw bytes",
    "numpy._core.multiarray.scalar": "builds a numpy scalar from a dtype and raw bytes",
    "numpy.core.numeric._frombuffer": "builds an array from a bytes buffer (protocol 5)",
    "numpy._core.numeric._frombuffer": "builds an array from a bytes buffer (protocol 5)",
    "numpy.ma.core._mareconstruct": "numpy masked-array reconstructor; allocates only",
    "numpy.random._pickle.__randomstate_ctor": (
        "builds a RandomState from a bit-generator name looked up in numpy's own table"
    ),
    "numpy.random._pickle.__generator_ctor": (
        "builds a Generator from a bit-generator name looked up in numpy's own table"
    ),
    "numpy.random._pickle.__bit_generator_ctor": (
        "builds a bit generator chosen by name from numpy's own table"
    ),
    "numpy.random.bit_generator.SeedSequence": "numpy's seed sequence; state only",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": (
        "Cython's generated unpickle helper: checks a layout checksum, allocates a "
        "SeedSequence and copies plain state into it"
    ),
    "numpy.random._mt19937.MT19937": "the Mersenne Twister bit generator; state only",
    "numpy.random._pcg64.PCG64": "the PCG64 bit generator; state only",
    "numpy.random.mtrand.RandomState": "numpy's legacy random state; state only",
    "numpy.random._generator.Generator": "numpy's random Generator; state only",
    # -- torch --------------------------------------------------------------------------
    "torch._utils._rebuild_tensor": _TORCH_REBUILD,
    "torch._utils._rebuild_tensor_v2": _TORCH_REBUILD,
    "torch._utils._rebuild_tensor_v3": _TORCH_REBUILD,
    "torch._utils._rebuild_parameter": "wraps a rebuilt tensor in nn.Parameter",
    "torch._utils._rebuild_parameter_with_state": (
        "wraps a rebuilt tensor in nn.Parameter and restores its plain attributes"
    ),
    "torch._utils._rebuild_qtensor": "rebuilds a quantized tensor from a loaded storage",
    "torch._utils._rebuild_sparse_tensor": "rebuilds a sparse tensor from loaded tensors",
    "torch._utils._rebuild_meta_tensor_no_storage": "builds a meta tensor: shape only",
    "torch._utils._rebuild_device_tensor_from_numpy": (
        "builds a tensor from an already-unpickled numpy array"
    ),
    "torch._utils._rebuild_nested_tensor": "rebuilds a nested tensor from loaded buffers",
    "torch._tensor._rebuild_from_type_v2": (
        "calls a pickled rebuild function (itself judged here) and sets the tensor "
        "subclass; equivalent to a REDUCE on that function"
    ),
    "torch.Size": "a tuple subclass holding a tensor shape",
    "torch.device": "a device descriptor ('cpu', 'cuda:0'); allocates nothing",
    "torch.serialization._get_layout": "maps a layout name to torch's layout constant",
    "torch.strided": "the default tensor layout constant",
    "torch.sparse_coo": "the sparse COO layout constant",
    "torch.per_tensor_affine": "a quantization scheme constant",
    "torch.per_channel_affine": "a quantization scheme constant",
    "torch.nn.parameter.Parameter": "the Parameter tensor subclass; wraps a tensor",
    "torch.nn.parameter.UninitializedParameter": "a lazy Parameter placeholder",
    "torch.storage.UntypedStorage": _TORCH_STORAGE,
    "torch.storage.TypedStorage": _TORCH_STORAGE,
    "torch.storage._load_from_bytes": (
        "legacy storage helper; refused unless the nested bytes pass this scanner "
        "(it calls torch.load on them)"
    ),
    "torch.distributed._shard.sharded_tensor.ShardedTensor": "sharded tensor metadata",
    # -- joblib ---------------------------------------------------------------------
    "joblib.numpy_pickle.NumpyArrayWrapper": (
        "joblib's array placeholder; its raw data follows the pickle and is read as "
        "bytes (object arrays as a nested pickle, which is scanned too)"
    ),
    "joblib.numpy_pickle_compat.NDArrayWrapper": (
        "joblib<0.10 array placeholder pointing to a sibling .npy file"
    ),
    # -- scikit-learn helpers that are not estimator classes --------------------------
    "sklearn.utils._bunch.Bunch": "a dict with attribute access",
    "sklearn.tree._tree.Tree": (
        "the decision-tree array structure; __setstate__ only copies node arrays"
    ),
    "sklearn._loss.loss.HalfBinomialLoss": "a loss object holding a link function",
    "sklearn._loss.loss.HalfMultinomialLoss": "a loss object holding a link function",
    "sklearn._loss.loss.HalfSquaredError": "a loss object holding a link function",
    "sklearn._loss.link.IdentityLink": "a link function object; no state",
    "sklearn._loss.link.LogitLink": "a link function object; no state",
    "sklearn._loss.link.MultinomialLogit": "a link function object; no state",
    "sklearn._loss._loss.CyHalfBinomialLoss": "a compiled loss object; no state",
    "sklearn._loss._loss.CyHalfMultinomialLoss": "a compiled loss object; no state",
    "sklearn._loss._loss.CyHalfSquaredError": "a compiled loss object; no state",
    "sklearn.neighbors._kd_tree.KDTree": "a KD-tree whose state is plain arrays",
    "sklearn.neighbors._ball_tree.BallTree": "a ball tree whose state is plain arrays",
    "sklearn.metrics._dist_metrics.EuclideanDistance64": "a distance object; no state",
    "sklearn.metrics._dist_metrics.EuclideanDistance": "a distance object; no state",
}

# torch dtypes are module attributes of torch: `torch.float32` etc.
for _dtype in (
    "float16", "float32", "float64", "bfloat16", "complex64", "complex128", "uint8", "int8",
    "int16", "int32", "int64", "bool", "qint8", "quint8", "qint32", "float8_e4m3fn",
    "float8_e5m2", "uint16", "uint32", "uint64",
):
    ALLOWED[f"torch.{_dtype}"] = _TORCH_DTYPE
for _storage in (
    "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
    "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32",
):
    ALLOWED[f"torch.{_storage}Storage"] = _TORCH_STORAGE

# Narrow name patterns, each with its reason. A pattern never reaches a dangerous name:
# `judge` checks the denylist first.
ALLOWED_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"sklearn\.(?!utils\._testing|datasets|externals|_build_utils|_config)"
            r"(?:[a-z_][a-z0-9_]*\.)+[A-Z][A-Za-z0-9]*"
        ),
        "a scikit-learn class: unpickling calls __new__ and BaseEstimator.__setstate__, "
        "which only restores attributes; constructors only store hyper-parameters",
    ),
    (
        re.compile(r"torch\.nn\.modules\.[a-z_]+\.[A-Z][A-Za-z0-9]*"),
        "a torch.nn layer class: full-model checkpoints rebuild it with __new__ and "
        "Module.__setstate__, which only fills __dict__",
    ),
    (
        re.compile(r"numpy\.(?:dtypes\.[A-Za-z0-9]+DType|(?:float|int|uint|complex)\d+|bool_)"),
        "a numpy scalar or dtype class used as a constructor for values",
    ),
)

# Known ways to run code or reach the system. A module entry covers every name below it.
DANGEROUS: dict[str, str] = {
    "os": "runs commands and touches files (system, popen, exec*, remove...)",
    "posix": "the os module's C core: system, exec*, fork",
    "nt": "the os module's C core on Windows: system, startfile",
    "subprocess": "runs programs",
    "commands": "Python 2 command runner",
    "popen2": "Python 2 command runner",
    "pty": "spawns a program on a pseudo-terminal",
    "sys": "interpreter state: modules, path, hooks, exit",
    "runpy": "runs Python modules and files",
    "importlib": "imports arbitrary modules",
    "imp": "imports arbitrary modules",
    "pkgutil": "imports arbitrary modules (resolve_name)",
    "zipimport": "imports code from archives",
    "code": "an interactive interpreter that runs source",
    "codeop": "compiles source",
    "types": "builds code objects and functions from bytes",
    "marshal": "loads code objects",
    "pickle": "unpickles again (a nested payload)",
    "_pickle": "unpickles again (a nested payload)",
    "cPickle": "unpickles again (a nested payload)",
    "pickletools": "pickle internals",
    "shelve": "opens pickled databases",
    "dill": "unpickles again, including code objects",
    "cloudpickle": "unpickles again, including code objects",
    "joblib.load": "unpickles another file",
    "ctypes": "calls native code and reads memory",
    "_ctypes": "calls native code and reads memory",
    "cffi": "calls native code",
    "socket": "opens network connections",
    "ssl": "opens network connections",
    "http": "makes HTTP requests or serves files",
    "urllib": "fetches URLs",
    "urllib2": "fetches URLs",
    "httplib": "makes HTTP requests",
    "requests": "fetches URLs",
    "httpx": "fetches URLs",
    "aiohttp": "fetches URLs",
    "ftplib": "transfers files over the network",
    "smtplib": "sends mail",
    "telnetlib": "opens network sessions",
    "xmlrpc": "remote procedure calls",
    "webbrowser": "opens a browser (runs a program)",
    "shutil": "copies, moves and deletes files; runs archive tools",
    "tempfile": "creates files",
    "glob": "lists files",
    "fileinput": "reads files",
    "io": "opens files (io.open, FileIO)",
    "_io": "opens files",
    "pathlib.Path": "reads and writes files (Path.write_text, unlink)",
    "zipfile": "reads and writes archives on disk",
    "tarfile": "extracts archives on disk",
    "sqlite3": "opens databases on disk",
    "dbm": "opens databases on disk",
    "asyncio": "runs subprocesses and opens connections",
    "multiprocessing": "starts processes",
    "concurrent": "starts processes and threads",
    "threading": "starts threads",
    "_thread": "starts threads",
    "signal": "changes signal handlers",
    "platform": "runs programs (popen in old versions) and probes the system",
    "pdb": "debugger that runs source",
    "bdb": "debugger that runs source",
    "timeit": "runs source strings",
    "cProfile": "runs source strings",
    "profile": "runs source strings",
    "trace": "runs source strings",
    "pydoc": "imports modules by name (locate) and runs pagers",
    "idlelib": "IDE internals that run source",
    "lib2to3": "imports and runs fixers",
    "doctest": "runs source in docstrings",
    "unittest": "imports and runs tests",
    "distutils": "writes files and runs compilers",
    "setuptools": "runs builds and commands",
    "pip": "installs packages (runs their code)",
    "ensurepip": "installs packages",
    "venv": "creates environments and runs programs",
    "site": "changes import paths",
    "builtins.eval": "runs Python source",
    "builtins.exec": "runs Python source",
    "builtins.compile": "compiles Python source",
    "builtins.__import__": "imports any module",
    "builtins.open": "opens files",
    "builtins.getattr": "reaches any attribute (e.g. os.system) of an object",
    "builtins.setattr": "overwrites attributes of modules and classes",
    "builtins.delattr": "deletes attributes of modules and classes",
    "builtins.globals": "exposes the interpreter's globals",
    "builtins.locals": "exposes the interpreter's locals",
    "builtins.vars": "exposes an object's namespace",
    "builtins.input": "reads from the terminal",
    "builtins.breakpoint": "starts a debugger",
    "builtins.help": "starts a pager",
    "builtins.memoryview": "exposes raw memory",
    "builtins.type": "creates new classes",
    "builtins.super": "reaches parent-class methods",
    "builtins.apply": "Python 2: calls any callable",
    "builtins.execfile": "Python 2: runs a file",
    "builtins.reload": "Python 2: re-imports a module",
    "builtins.classmethod": "wraps arbitrary callables",
    "builtins.staticmethod": "wraps arbitrary callables",
    "builtins.property": "wraps arbitrary callables",
    "operator": "attrgetter/methodcaller/itemgetter reach and call any attribute",
    "_operator": "attrgetter/methodcaller/itemgetter reach and call any attribute",
    "functools": "partial/reduce call any callable with chosen arguments",
    "_functools": "partial/reduce call any callable with chosen arguments",
    "copyreg.__newobj__": "calls cls.__new__ on any class",
    "copyreg.__newobj_ex__": "calls cls.__new__ on any class",
    "copyreg._reconstructor.__globals__": "reaches module globals",
    "numpy.load": "loads another file, pickles allowed",
    "numpy.lib.npyio": "loads files, pickles allowed",
    "numpy.f2py": "runs compilers",
    "numpy.distutils": "runs compilers",
    "numpy.testing": "runs source strings (runstring)",
    "numpy.ctypeslib": "loads native libraries",
    "numpy.fromfile": "reads files",
    "numpy.memmap": "maps files",
    "torch.load": "unpickles another file",
    "torch.hub": "downloads and runs code",
    "torch.jit": "compiles and runs TorchScript source (unsupported_tensor_ops.execWrapper)",
    "torch._C": "torch native internals",
    "torch.ops": "calls any registered native op",
    "torch.classes": "builds any registered native class",
    "torch.serialization.load": "unpickles another file",
    "torch.utils.cpp_extension": "compiles and loads native code",
    "torch.utils.bottleneck": "runs scripts under a profiler",
    "torch.utils.collect_env": "runs programs",
    "torch._dynamo": "compiles and runs generated code",
    "torch._inductor": "compiles and runs generated code",
    "torch.fx": "builds modules from generated source",
    "torch.package": "imports packaged code",
    "torch.storage._load_from_bytes.__globals__": "reaches module globals",
    "transformers.dynamic_module_utils": "downloads and imports remote code",
    "keras.models.load_model": "loads another model, Lambda layers included",
    "tensorflow": "file I/O ops and py_function",
    "_posixsubprocess": "forks and runs programs",
    "atexit": "registers code to run at interpreter exit",
    "_interpreters": "runs source in a sub-interpreter",
    "_xxsubinterpreters": "runs source in a sub-interpreter",
    "logging.FileHandler": "creates files on the host",
    "logging.config": "loads configs that import and call anything",
    "imaplib.IMAP4_stream": "runs a command to open its stream",
    "_pyrepl": "REPL internals that run pagers and source",
    "_osx_support": "runs compiler commands",
    "_aix_support": "runs system commands",
    "uuid._get_command_stdout": "runs system commands",
    "gc": "reaches every live object",
    "inspect": "reaches frames and module globals",
    "__main__": "names defined by whatever script loads the file",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the allowlist says about one imported name, and why."""

    kind: Literal["allowed", "dangerous", "unknown"]
    reason: str


_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "exceptions": "builtins"}


def normalise(module: str, name: str) -> str:
    """The dotted name an unpickler reaches for ``module`` and ``name``.

    Python 2 module names are mapped as ``fix_imports`` does; the name may itself be
    dotted (protocol 4 resolves attribute chains).
    """
    module = _PY2_MODULES.get(module, module)
    return f"{module}.{name}" if name else module


@functools.lru_cache(maxsize=4096)
def judge(qualname: str) -> Verdict:
    """Allowed, dangerous or unknown: the denylist first, then exact entries, then patterns."""
    parts = qualname.split(".")
    for i in range(len(parts), 0, -1):
        reason = DANGEROUS.get(".".join(parts[:i]))
        if reason is not None:
            return Verdict("dangerous", reason)
    if any(p.startswith("__") and p.endswith("__") for p in parts[1:]):
        return Verdict("dangerous", "reaches a dunder attribute (__globals__, __class__...)")
    reason = ALLOWED.get(qualname)
    if reason is not None:
        return Verdict("allowed", reason)
    for pattern, why in ALLOWED_PATTERNS:
        if pattern.fullmatch(qualname):
            return Verdict("allowed", why)
    return Verdict("unknown", "not on bastion's allowlist of safe imports")
