"""The library search path an ELF program or library carries (DT_RPATH and DT_RUNPATH),
read the way the dynamic loader reads it: from the PT_DYNAMIC segment, its string table
found through the PT_LOAD segments (section headers, which `strip` may remove, are not
used). Pure Python: production hosts need not have binutils' readelf.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

_MAGIC = b"\x7fELF"
PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 5, 15, 29
# (ELF header, program header, dynamic entry) layouts, by ELF class (1: 32-bit, 2: 64-bit)
_LAYOUTS = {1: ("16sHHIIIIIHHHHHH", "IIIIIIII", "iI"),
            2: ("16sHHIQQQIHHHHHH", "IIQQQQQQ", "qQ")}


def is_elf(path: Path) -> bool:
    """Whether `path` is a readable file starting with the ELF magic."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == _MAGIC
    except OSError:
        return False


def search_path(path: Path) -> list[str]:
    """The RPATH and RUNPATH entries of the ELF file at `path`, unexpanded (`$ORIGIN` as
    written); [] for a file that is no ELF, has none or cannot be parsed."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _entries(data) if data[:4] == _MAGIC else []
    except (OSError, struct.error, ValueError, IndexError, KeyError, StopIteration):
        return []


def _entries(data: mmap.mmap) -> list[str]:
    header, phdr, dyn = _LAYOUTS[data[4]]
    endian = "<" if data[5] == 1 else ">"
    fields = struct.unpack_from(endian + header, data)
    phoff, phentsize, phnum = fields[5], fields[9], fields[10]
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None  # (offset, filesz)
    for index in range(phnum):
        p = struct.unpack_from(endian + phdr, data, phoff + index * phentsize)
        p_type, offset, vaddr, filesz = ((p[0], p[1], p[2], p[4]) if data[4] == 1
                                         else (p[0], p[2], p[3], p[5]))
        if p_type == PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return []
    size = struct.calcsize(endian + dyn)
    strtab, wanted = None, []
    for at in range(dynamic[0], dynamic[0] + dynamic[1] - size + 1, size):
        tag, value = struct.unpack_from(endian + dyn, data, at)
        if tag == DT_NULL:
            break
        if tag == DT_STRTAB:
            strtab = value
        elif tag in (DT_RPATH, DT_RUNPATH):
            wanted.append(value)
    if strtab is None:
        return []
    base = next(o + strtab - v for v, o, n in loads if v <= strtab < v + n)
    texts = [data[base + w:data.find(b"\0", base + w)].decode("utf-8", "surrogateescape")
             for w in wanted]
    return [entry for text in texts for entry in text.split(":") if entry]
