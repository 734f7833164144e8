"""Builds the optional native helpers: the FastJet batch helper (native/fjbatch.cpp) against the headers of the
`fastjet` wheel, and the Pythia event-record reader (native/pythia_record.cpp, which needs no headers).

Both are loaded with ctypes; if one cannot be built or loaded, ai4hep falls back to FastJet's Python interface and to
Pythia's nextBatch (same results, slower).
"""

from pathlib import Path

from setuptools import Extension, setup


def _fastjet_dirs() -> tuple[list[str], list[str]]:
    try:
        import fastjet
    except ImportError:
        return [], []
    root = Path(fastjet.__file__).parent
    return [str(root / "include")], [str(root / "lib64"), str(root / "lib")]


include_dirs, library_dirs = _fastjet_dirs()
extensions = [
    Extension(
        "ai4hep.data.generate.native._pythiarecord",
        sources=["src/ai4hep/data/generate/native/pythia_record.cpp"],
        extra_compile_args=["-O2", "-std=c++17"],
        language="c++",
        optional=True,
    )
]
if include_dirs:
    extensions.append(
        Extension(
            "ai4hep.data.generate.native._fjbatch",
            sources=["src/ai4hep/data/generate/native/fjbatch.cpp"],
            include_dirs=include_dirs,
            library_dirs=library_dirs,
            libraries=["fastjetcontribfragile", "fastjettools", "fastjet"],
            extra_compile_args=["-O2", "-std=c++17"],
            language="c++",
            optional=True,
        )
    )

setup(ext_modules=extensions)
