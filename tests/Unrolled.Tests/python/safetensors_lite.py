"""A tiny safetensors reader and writer (json + struct + torch.frombuffer), so that the interop tests
need neither numpy nor the safetensors package. Format: an unsigned 64-bit little-endian header length N,
N bytes of UTF-8 JSON {"__metadata__": {...}, name: {"dtype", "shape", "data_offsets": [begin, end]}},
then the raw little-endian data, offsets counted from the start of the data section."""
import json
import struct

import torch

DTYPES = {"F32": torch.float32, "I64": torch.int64}
SIZES = {"F32": 4, "I64": 8}
NAMES = {torch.float32: "F32", torch.int64: "I64"}


def read(path):
    """Returns (tensors, metadata): an ordered dict of name -> tensor in header order, and the metadata.
    Checks the file as strictly as the reference implementation: the data section is covered exactly,
    with neither holes nor overlaps nor trailing bytes."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, too short for the header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} beyond the end of the file ({len(blob)} bytes)")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", None)
    tensors = {}
    spans = []
    for name, entry in header.items():
        if set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"{name}: unexpected header fields {sorted(entry)}")
        dtype = entry["dtype"]
        if dtype not in DTYPES:
            raise ValueError(f"{name}: unsupported dtype {dtype}")
        shape = [int(d) for d in entry["shape"]]
        begin, end = (int(x) for x in entry["data_offsets"])
        count = 1
        for d in shape:
            count *= d
        if end - begin != count * SIZES[dtype]:
            raise ValueError(f"{name}: data_offsets [{begin}, {end}] do not hold {count} {dtype} values")
        if end > len(data):
            raise ValueError(f"{name}: data_offsets end {end} beyond the data section ({len(data)} bytes)")
        spans.append((begin, end, name))
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=DTYPES[dtype]) if count > 0 else torch.empty(0, dtype=DTYPES[dtype])
        tensors[name] = t.reshape(shape).clone()
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise ValueError(f"{name}: data starts at {begin}, expected {position} (hole or overlap)")
        position = end
    if position != len(data):
        raise ValueError(f"the data section has {len(data) - position} bytes no tensor describes")
    return tensors, metadata


def _raw_bytes(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.float32:
        return struct.pack(f"<{t.numel()}f", *t.tolist())
    if t.dtype == torch.int64:
        return struct.pack(f"<{t.numel()}q", *t.tolist())
    raise ValueError(f"unsupported dtype {t.dtype}")


def write(path, tensors, metadata=None):
    """Writes name -> tensor in the given order (not sorted, so an I64 tensor may sit at an offset
    that is not a multiple of 8, which the format allows); the header is padded with spaces to 8 bytes."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    chunks = []
    offset = 0
    for name, t in tensors.items():
        raw = _raw_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def write_floats(path, t):
    """Raw float32 little-endian values, as the C# tests read and write them."""
    with open(path, "wb") as f:
        f.write(_raw_bytes(t.float()))


def read_floats(path, shape):
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    return torch.frombuffer(raw, dtype=torch.float32).reshape(shape).clone()
