#!/usr/bin/env python3
"""One ADBench `.npz` table (arrays X and y) as CSV text, with the Python standard library only.

    npz_to_csv.py IN.npz OUT.csv

The CSV has a header `f0,...,fN,label`, then one line per row: the features, then the label,
each written with "%g" (six significant digits, integers without a decimal point), lines ending
in "\\n". bench/fetch-data.sh pins the SHA-256 of exactly this text.
"""
import ast
import struct
import sys
import zipfile

# numpy dtype codes this reader understands (little-endian or byte-sized), as struct codes.
CODES = {
    "<f8": "d", "<f4": "f", "<i8": "q", "<i4": "i", "<i2": "h", "<u2": "H", "|u1": "B", "|i1": "b",
    "|b1": "?",
}


def read_npy(data):
    """The array in .npy bytes: (flat values in C order, shape)."""
    if data[:6] != b"\x93NUMPY":
        raise ValueError("not a .npy array")
    major = data[6]
    if major == 1:
        (header_len,) = struct.unpack_from("<H", data, 8)
        start = 10
    else:
        (header_len,) = struct.unpack_from("<I", data, 8)
        start = 12
    header = ast.literal_eval(data[start : start + header_len].decode("latin1"))
    descr, shape = header["descr"], tuple(header["shape"])
    if descr not in CODES:
        raise ValueError(f"unsupported dtype {descr}")
    count = 1
    for extent in shape:
        count *= extent
    values = struct.unpack_from(f"<{count}{CODES[descr]}", data, start + header_len)
    if header["fortran_order"] and len(shape) == 2:
        rows, columns = shape
        values = [values[c * rows + r] for r in range(rows) for c in range(columns)]
    return list(values), shape


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    with zipfile.ZipFile(source) as archive:
        x, x_shape = read_npy(archive.read("X.npy"))
        y, y_shape = read_npy(archive.read("y.npy"))
    rows, columns = x_shape
    if y_shape != (rows,):
        sys.exit(f"{source}: X has {rows} rows, y has shape {y_shape}")
    with open(target, "w", newline="\n") as out:
        out.write(",".join([f"f{c}" for c in range(columns)] + ["label"]) + "\n")
        for r in range(rows):
            row = x[r * columns : (r + 1) * columns] + [y[r]]
            out.write(",".join("%g" % float(value) for value in row) + "\n")


if __name__ == "__main__":
    main()
