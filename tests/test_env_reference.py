"""docs/env.md lists every RESET_NATIVE_* environment variable the project reads, and only those.

CPU only, no torch, no build: the sources are scanned with regular expressions for the forms that read a variable.
  run time, cuda/ and cpp/ (comments stripped): a string literal "RESET_NATIVE_..." as the first argument of a call
    (std::getenv, cuda_core::env_forced / env_switch, env_is, grouped_parts, ...; not setenv / unsetenv / putenv),
    or assigned to a char* name (constexpr const char* kBdLeanEnv = "..."; const char* name = "...");
  run time, python/reset_native/: os.environ.get("..."), os.getenv("..."), os.environ["..."] (not assigned to),
    "..." in os.environ, and module constants NAME_ENV = "...";
  build and test time: $ENV{...} / ENV{...} in CMakeLists.txt and cmake/, env = "..." in pyproject.toml, $NAME in
    .ci/run, the Python read forms above in tests/ (not monkeypatch.setenv: that sets, it does not read) and
    getenv("...") in tests/ C++.
CMake variables, compile definitions and preprocessor macros (RESET_NATIVE_WITH_CUDA, RESET_NATIVE_GEMV_TRACE, ...)
match none of these forms. docs/env.md's variables are the backticked first cells of its table rows."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "env.md"
THIS = Path(__file__).resolve()

NAME = r"RESET_NATIVE_[A-Z0-9_]+"
CXX_SUFFIXES = {".c", ".cc", ".cpp", ".cu", ".cuh", ".h", ".hpp", ".inl"}

# C / C++ / CUDA: comments out first (string literals kept whole, so a "//" inside one is no comment).
CXX_TOKENS = re.compile(r'"(?:\\.|[^"\\\n])*"|//[^\n]*|/\*.*?\*/', re.S)
CXX_CALL_ARG = re.compile(r"\b([A-Za-z_][\w:]*)\s*\(\s*\"(" + NAME + r")\"")
CXX_CHAR_CONST = re.compile(r"\bchar\s*\*\s*(?:const\s+)?\w+\s*=\s*\"(" + NAME + r")\"")
CXX_GETENV = re.compile(r"\bgetenv\s*\(\s*\"(" + NAME + r")\"")
CXX_WRITERS = {"setenv", "unsetenv", "putenv", "std::setenv", "std::unsetenv", "std::putenv", "::setenv"}

Q = r"[\"']"
PY_READS = [
    re.compile(r"\benviron\.get\(\s*" + Q + "(" + NAME + ")" + Q),
    re.compile(r"\bgetenv\(\s*" + Q + "(" + NAME + ")" + Q),
    re.compile(r"\benviron\[\s*" + Q + "(" + NAME + ")" + Q + r"\s*\](?!\s*=[^=])"),
    re.compile(Q + "(" + NAME + ")" + Q + r"\s+(?:not\s+)?in\s+(?:os\.)?environ\b"),
]
PY_ENV_CONST = re.compile(r"^\s*\w*_ENV\s*(?::\s*str\s*)?=\s*" + Q + "(" + NAME + ")" + Q, re.M)
CMAKE_ENV = re.compile(r"\bENV\{(" + NAME + r")\}")
PYPROJECT_ENV = re.compile(r"\benv\s*=\s*\"(" + NAME + r")\"")
SHELL_READ = re.compile(r"\$\{?(" + NAME + r")\b")
DOC_ROW = re.compile(r"^\|\s*`(" + NAME + r")`\s*\|", re.M)


def _files(rel, suffixes):
    base = ROOT / rel
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*")
                  if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts and p.resolve() != THIS)


def cxx_reads(text, any_call=True):
    """Names a C / C++ / CUDA source reads (any_call False: std::getenv only, for tests' C++)."""
    code = CXX_TOKENS.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)
    if not any_call:
        return set(CXX_GETENV.findall(code))
    found = {name for func, name in CXX_CALL_ARG.findall(code) if func not in CXX_WRITERS}
    return found | set(CXX_CHAR_CONST.findall(code))


def py_reads(text, constants=True):
    """Names a Python source reads (constants: also NAME_ENV = "..." module constants)."""
    found = set()
    for pattern in PY_READS:
        found.update(pattern.findall(text))
    if constants:
        found.update(PY_ENV_CONST.findall(text))
    return found


def read_names():
    """{variable: [files that read it]} over the run-time, build and test sources."""
    where = {}

    def add(names, path):
        for name in names:
            where.setdefault(name, []).append(str(path.relative_to(ROOT)))

    for rel in ("cuda", "cpp"):
        for path in _files(rel, CXX_SUFFIXES):
            add(cxx_reads(path.read_text(errors="replace")), path)
    for path in _files("python/reset_native", {".py"}):
        add(py_reads(path.read_text(errors="replace")), path)
    cmake = [ROOT / "CMakeLists.txt"] + [p for p in sorted((ROOT / "cmake").glob("*")) if p.is_file()]
    for path in cmake:
        if path.is_file():
            add(CMAKE_ENV.findall(path.read_text(errors="replace")), path)
    if (ROOT / "pyproject.toml").is_file():
        add(PYPROJECT_ENV.findall((ROOT / "pyproject.toml").read_text()), ROOT / "pyproject.toml")
    if (ROOT / ".ci" / "run").is_file():
        add(SHELL_READ.findall((ROOT / ".ci" / "run").read_text()), ROOT / ".ci" / "run")
    for path in _files("tests", {".py"}):
        add(py_reads(path.read_text(errors="replace"), constants=False), path)
    for path in _files("tests", CXX_SUFFIXES):
        add(cxx_reads(path.read_text(errors="replace"), any_call=False), path)
    return where


def doc_names():
    return DOC_ROW.findall(DOC.read_text())


def test_scanner_sees_each_read_form():
    cxx = '''
        const char* v = std::getenv("RESET_NATIVE_A");
        return cuda_core::env_switch("RESET_NATIVE_B", true) && env_forced("RESET_NATIVE_C") == 1;
        constexpr const char* kBdLeanEnv = "RESET_NATIVE_D";
        const char* name = "RESET_NATIVE_E";
        grouped_parts("RESET_NATIVE_F", rows, chunks, sms);
        setenv("RESET_NATIVE_WRITTEN", "1", 1);
        // std::getenv("RESET_NATIVE_IN_A_COMMENT")
        /* env_forced("RESET_NATIVE_IN_A_BLOCK_COMMENT") */
        #ifdef RESET_NATIVE_MACRO
        target_compile_definitions(x PRIVATE RESET_NATIVE_DEFINITION=1)
    '''
    assert cxx_reads(cxx) == {f"RESET_NATIVE_{c}" for c in "ABCDEF"}
    py = '''
os.environ.get("RESET_NATIVE_A", "1")
os.getenv('RESET_NATIVE_B')
x = os.environ["RESET_NATIVE_C"] == "1"
os.environ["RESET_NATIVE_WRITTEN"] = "0"
if "RESET_NATIVE_D" in os.environ: pass
CLUSTER_ENV = "RESET_NATIVE_E"
monkeypatch.setenv("RESET_NATIVE_SET", "1")
'''
    assert py_reads(py) == {f"RESET_NATIVE_{c}" for c in "ABCDE"}
    assert py_reads(py, constants=False) == {f"RESET_NATIVE_{c}" for c in "ABCD"}
    assert CMAKE_ENV.findall('if(DEFINED ENV{RESET_NATIVE_A})\n set(X "$ENV{RESET_NATIVE_B}")\n'
                             'set(RESET_NATIVE_C ON)') == ["RESET_NATIVE_A", "RESET_NATIVE_B"]
    assert PYPROJECT_ENV.findall('RESET_NATIVE_X = { env = "RESET_NATIVE_Y", default = "AUTO" }') == ["RESET_NATIVE_Y"]


def test_scan_finds_known_variables():
    """A guard on the scanner itself: a read of each form in the real sources, and no build-only name."""
    found = read_names()
    for name in ("RESET_NATIVE_GEMV_BD_LEAN_SPLIT",  # constexpr const char* k...Env
                 "RESET_NATIVE_SAMPLER_FAST_FINISH",  # const char* name, then env_is(name, ...)
                 "RESET_NATIVE_SAMPLER_STATS_CHUNKS",  # grouped_parts("...", ...)
                 "RESET_NATIVE_GEMV_RING",  # cuda_core::env_forced
                 "RESET_NATIVE_CPU_ISA",  # std::getenv
                 "RESET_NATIVE_FUSED_GEMV",  # os.environ.get
                 "RESET_NATIVE_CUDA",  # pyproject.toml
                 "RESET_NATIVE_CUDA_ARCH",  # CMake $ENV{}
                 "RESET_NATIVE_SLOW"):  # tests/conftest.py
        assert name in found, f"the scanner no longer finds {name}"
    for name in ("RESET_NATIVE_WITH_CUDA", "RESET_NATIVE_WGMMA", "RESET_NATIVE_SOURCES", "RESET_NATIVE_GEMV_TRACE",
                 "RESET_NATIVE_PYTHON", "RESET_NATIVE_NATIVE_ARCH"):
        assert name not in found, f"{name} is no environment variable but was found in {found[name]}"


def test_every_variable_read_is_documented():
    found = read_names()
    missing = sorted(set(found) - set(doc_names()))
    assert not missing, "read from the environment but not a table row of docs/env.md:\n" + "\n".join(
        f"  {name} ({', '.join(sorted(set(found[name])))})" for name in missing)


def test_every_documented_variable_is_still_read():
    stale = sorted(set(doc_names()) - set(read_names()))
    assert not stale, "table rows of docs/env.md that no source reads any more: " + ", ".join(stale)


def test_each_variable_documented_once():
    names = doc_names()
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, "docs/env.md has more than one row for: " + ", ".join(twice)
