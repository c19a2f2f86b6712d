"""User data files: CSV (a header row, one sample per row) and NPZ (named arrays).

A CSV is read with the stdlib :mod:`csv` module as UTF-8, with or without a byte
order mark (Excel's "CSV UTF-8" writes one). Blank lines are skipped and header
names are stripped. The ``target`` column holds the labels, the optional
``id_column`` the sample ids (unique integers; without it the ids are the data
rows' positions 0..n-1), and every other column is a feature.

Nothing is imputed or guessed: a ragged row, a missing value (an empty cell,
``NA``, ``NaN``, ``null``, ...), a non-numeric cell in a numeric column or an
infinite number is refused with one message naming the file, the line, the
column and the value. Unlearning compares models trained with and without
given samples; silently filled or dropped cells would change what "the
samples" are.

**Labels** (classification) are mapped to 0..K-1 in sorted order of their
distinct values: string labels (``cat``, ``dog``), and integer labels with gaps
(``1..3`` or ``0, 2, 5``) alike, so that no empty class appears. The original
labels are kept in ``Dataset.info["label_names"]`` (index = class) and
``info["labels_remapped"]`` says whether they differ from 0..K-1.

**Categorical features** are one-hot encoded (``categorical="auto"``: every
feature column holding a non-numeric value; ``"none"``; or a list of column
names). The vocabulary of a column is the sorted set of its values in the
*training* rows: the data are split first, so the test part cannot add
columns, and a test value unseen in training encodes to all zeros. The encoded
feature names (``colour=red``) are in ``info["feature_names"]`` and the
vocabularies in ``info["categories"]``.

The vocabulary, like the list of classes, is part of the data set's schema: it
fixes the input layout that every model of an experiment shares (original,
golden, an exact engine's constituents). A category that occurs only in
forgotten samples therefore keeps its column, which is then all zeros in the
retained data, just as a forgotten class keeps its output unit. No statistic
of the values is fitted here; scaling is fitted by each model on its own
training data (:mod:`unlearnkit.models.preprocessing`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from unlearnkit.data.dataset import Dataset
from unlearnkit.data.loaders import from_arrays, split_indices
from unlearnkit.errors import DatasetError

# Spellings of "no value" written by spreadsheets, pandas and R (compared case-insensitively).
MISSING_VALUES = frozenset(
    {"", "na", "n/a", "nan", "-nan", "null", "none", "nil", "?", "#n/a", "#na", "<na>", "missing"}
)
NPZ_KEYS = ("X", "y", "ids", "X_test", "y_test", "ids_test")
_INT64 = np.iinfo(np.int64)


def read_csv(
    path: str | Path,
    *,
    target: str = "label",
    id_column: str = "id",
    task: str = "classification",
    categorical: str | list[str] | tuple[str, ...] = "auto",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load a CSV file as a :class:`Dataset` (see the module docstring for the format).

    ``id_column`` is optional in the file; ``categorical`` is ``"auto"``, ``"none"``
    or a list of feature column names to one-hot encode.
    """
    path = Path(path)
    _check_task(task)
    header, rows, lines = _read_rows(path)
    where = _Where(path, lines)
    if not target or target not in header:
        raise DatasetError(
            f"{path} has no target column {target!r}; columns (from the first non-blank row, "
            f"the header): {', '.join(header)}; name the label column with --target "
            f"(target=...){_separator_hint(header)}"
        )
    if id_column == target:
        raise DatasetError(f"the target and the id column are both {target!r}; name two columns")
    columns = {name: [row[j] for row in rows] for j, name in enumerate(header)}
    # Each column is parsed as numbers once; None marks a column with a non-numeric cell.
    parsed = {name: _parse_numbers(values) for name, values in columns.items()}
    _refuse_missing(columns, parsed, where)
    has_ids = id_column in header
    features = [h for h in header if h != target and not (has_ids and h == id_column)]
    if not features:
        raise DatasetError(
            f"{path} has no feature column besides {target!r}"
            + (f" and {id_column!r}" if has_ids else "")
        )
    encoded = _categorical_columns(categorical, features, parsed, where)

    ids = _ids(columns[id_column], id_column, where) if has_ids else np.arange(len(rows))
    info: dict = {
        "source": path.name,
        "target": target,
        "id_column": id_column if has_ids else None,
    }
    if task == "classification":
        y, label_names, remapped = _labels(columns[target], parsed[target], target, where)
        info.update(label_names=label_names, labels_remapped=remapped)
    else:
        fix = "a regression target must be numeric"
        y = _numbers(columns[target], parsed[target], target, where, fix=fix)

    numeric = {
        name: _numbers(
            columns[name], parsed[name], name, where, fix=_numeric_fix(categorical, name)
        )
        for name in features
        if name not in encoded
    }
    # Split before encoding: the vocabulary may come from the training rows only.
    tr, te = split_indices(
        y, test_fraction=test_fraction, seed=seed, stratify=task == "classification", name=str(path)
    )
    blocks_tr, blocks_te, names, vocabularies = [], [], [], {}
    for name in features:
        if name in numeric:
            values = numeric[name]
            blocks_tr.append(values[tr, None])
            blocks_te.append(values[te, None])
            names.append(name)
            continue
        values = np.asarray(columns[name], dtype=object)
        vocabulary = _sorted_categories(set(values[tr]))
        vocabularies[name] = vocabulary
        blocks_tr.append(_one_hot(values[tr], vocabulary))
        blocks_te.append(_one_hot(values[te], vocabulary))
        names += [f"{name}={v}" for v in vocabulary]
    info.update(feature_names=names, categories=vocabularies)
    return from_arrays(
        np.concatenate(blocks_tr, axis=1),
        y[tr],
        ids=ids[tr],
        X_test=np.concatenate(blocks_te, axis=1),
        y_test=y[te],
        ids_test=ids[te],
        name=path.stem,
        task=task,
        seed=seed,
        info=info,
    )


def read_npz(
    path: str | Path, *, task: str = "classification", test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """Load arrays ``X``, ``y`` and optional ``ids``, ``X_test``, ``y_test``, ``ids_test``.

    Labels get the same mapping to 0..K-1 as a CSV's, over ``y`` and ``y_test`` together.
    """
    path = Path(path)
    _check_task(task)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a file that is not an archive
        raise DatasetError(f"cannot read {path} as NPZ: {exc}") from None
    with archive:
        unknown = sorted(set(archive.files) - set(NPZ_KEYS))
        if unknown:
            raise DatasetError(
                f"{path} holds unexpected arrays {unknown}; an NPZ data set holds "
                f"{', '.join(NPZ_KEYS)} (X and y required)"
            )
        if "X" not in archive.files or "y" not in archive.files:
            raise DatasetError(
                f"{path} must hold arrays 'X' and 'y'; found {sorted(archive.files)}"
            )
        arrays = {key: _npz_array(archive, key, path) for key in archive.files}
    has_test = "X_test" in arrays
    if has_test != ("y_test" in arrays):
        raise DatasetError(f"{path}: give X_test and y_test together, or neither")
    if "ids_test" in arrays and not has_test:
        raise DatasetError(f"{path}: ids_test is given without X_test and y_test")
    parts = [("X", "y", "ids")] + [("X_test", "y_test", "ids_test")] * has_test
    for xk, yk, ik in parts:
        X, y = arrays[xk], arrays[yk]
        if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
            raise DatasetError(
                f"{path}: {xk} must be (n, features...) and {yk} (n,); got {xk}{X.shape} "
                f"and {yk}{y.shape}"
            )
        if X.dtype.kind not in "biuf":
            raise DatasetError(
                f"{path}: {xk} has dtype {X.dtype}; features must be numbers "
                "(one-hot encode categories before saving, or use a CSV)"
            )
        bad = ~np.isfinite(X.reshape(len(X), -1).astype(np.float64)).all(axis=1)
        if bad.any():
            raise DatasetError(
                f"{path}: {xk}[{int(np.argmax(bad))}] holds NaN or an infinite value "
                f"({int(bad.sum())} row(s) in all); impute or drop those rows"
            )
        if ik in arrays:
            ids = arrays[ik]
            if ids.dtype.kind not in "iu" or ids.shape != (len(X),):
                raise DatasetError(
                    f"{path}: {ik} must be {len(X)} integers, one per row of {xk}; "
                    f"got dtype {ids.dtype}, shape {ids.shape}"
                )
    if has_test and arrays["X_test"].shape[1:] != arrays["X"].shape[1:]:
        raise DatasetError(
            f"{path}: X_test samples have shape {arrays['X_test'].shape[1:]}, X samples "
            f"{arrays['X'].shape[1:]}; they must match"
        )
    y = arrays["y"]
    y_test = arrays.get("y_test")
    info: dict = {"source": path.name}
    if task == "classification":
        both = y if y_test is None else np.concatenate([y, y_test])
        if both.dtype.kind not in "biufUS":
            raise DatasetError(
                f"{path}: y has dtype {both.dtype}; labels must be numbers or strings"
            )
        if both.dtype.kind == "f":
            if not np.isfinite(both).all() or not np.all(both == np.round(both)):
                raise DatasetError(
                    f"{path}: y holds non-integer or non-finite numbers; class labels must be "
                    "integers or strings (or load with task='regression')"
                )
            both = both.astype(np.int64)
        codes, names = _label_codes(both)
        y, y_test = codes[: len(y)], (None if y_test is None else codes[len(y) :])
        info.update(label_names=names, labels_remapped=names != [str(i) for i in range(len(names))])
    else:
        for key, values in (("y", y), ("y_test", y_test)):
            if values is not None and values.dtype.kind not in "biuf":
                raise DatasetError(
                    f"{path}: {key} has dtype {values.dtype}; a regression target must be numeric"
                )
            if values is not None and not np.isfinite(values.astype(np.float64)).all():
                raise DatasetError(f"{path}: {key} holds NaN or infinite targets; drop those rows")
    return from_arrays(
        arrays["X"],
        y,
        ids=arrays.get("ids"),
        X_test=arrays.get("X_test"),
        y_test=y_test,
        ids_test=arrays.get("ids_test"),
        name=path.stem,
        task=task,
        test_fraction=test_fraction,
        seed=seed,
        info=info,
    )


class _Where:
    """Names a cell as ``file, line N, column 'c'`` for error messages."""

    def __init__(self, path: Path, lines: list[int]):
        self.path, self.lines = path, lines

    def __call__(self, row: int, column: str) -> str:
        return f"{self.path}, line {self.lines[row]}, column {column!r}"


def _check_task(task: str) -> None:
    if task not in ("classification", "regression"):
        raise DatasetError(f"task must be 'classification' or 'regression'; got {task!r}")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, stripped data rows and each row's 1-based line number; blank lines dropped."""
    rows, lines = [], []
    try:
        # newline="" lets csv handle line breaks inside quoted cells; utf-8-sig drops a BOM.
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            start = 1
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append([cell.strip() for cell in row])
                    lines.append(start)
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as "
            "'CSV UTF-8' or convert it with iconv"
        ) from None
    except csv.Error as exc:
        raise DatasetError(f"{path}, line {start}: not valid CSV ({exc})") from None
    if not rows:
        raise DatasetError(f"{path} is empty; it needs a header row and data rows")
    header, body, lines = rows[0], rows[1:], lines[1:]
    for j, name in enumerate(header):
        if not name:
            raise DatasetError(
                f"{path}, line 1: column {j + 1} of the header has no name; name it or "
                "delete the column"
            )
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if name in seen:
            raise DatasetError(
                f"{path}, line 1: column name {name!r} appears twice (columns {seen[name] + 1} "
                f"and {j + 1}); give every column its own name"
            )
        seen[name] = j
    for row, line in zip(body, lines, strict=True):
        if len(row) != len(header):
            if len(row) < len(header):
                detail = f"no value for column {header[len(row)]!r}"
            else:
                detail = f"extra value {row[len(header)]!r} after the last column {header[-1]!r}"
            raise DatasetError(
                f"{path}, line {line}: {len(row)} values but the header has {len(header)} "
                f"columns ({detail}); give every row one value per column"
            )
    if len(body) < 2:
        raise DatasetError(f"{path} needs a header row and at least 2 data rows")
    return header, body, lines


def _separator_hint(header: list[str]) -> str:
    if len(header) == 1:
        for sep, word in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header[0]:
                return f"; the header seems to be separated by {word}: save the file with commas"
    return ""


def _parse_numbers(values: list[str]) -> np.ndarray | None:
    """The column as float64 if every cell is a number (``nan`` and ``inf`` included), else None."""
    try:
        # numpy parses a list of strings in one go, far faster than a float() per cell.
        return np.asarray(values, dtype=np.float64)
    except ValueError:
        return None


def _is_number(text: str) -> bool:
    return _parse_numbers([text]) is not None


def _refuse_missing(
    columns: dict[str, list[str]], parsed: dict[str, np.ndarray | None], where: _Where
) -> None:
    first = None  # (row, column position, name) of the earliest missing cell
    for j, (name, values) in enumerate(columns.items()):
        numbers = parsed[name]
        if numbers is not None:  # only a NaN spelling can be missing in a column of numbers
            gaps = np.isnan(numbers)
            rows = [int(np.argmax(gaps))] if gaps.any() else []
        else:
            gaps = {v for v in set(values) if v.lower() in MISSING_VALUES}
            rows = [values.index(v) for v in gaps]
        if rows:
            here = (min(rows), j, name)
            first = here if first is None else min(first, here)
    if first is not None:
        row, _, name = first
        value = columns[name][row]
        raise DatasetError(
            f"{where(row, name)}: missing value {value!r}; unlearnkit does not impute: "
            "impute or drop the row"
        )


def _categorical_columns(
    categorical, features: list[str], parsed: dict[str, np.ndarray | None], where: _Where
) -> set[str]:
    if isinstance(categorical, str) and categorical in ("auto", "none"):
        if categorical == "none":
            return set()
        return {name for name in features if parsed[name] is None}
    if not isinstance(categorical, (str, list, tuple)):
        raise DatasetError(
            f"categorical must be 'auto', 'none' or a list of column names; got {categorical!r}"
        )
    names = [categorical] if isinstance(categorical, str) else list(categorical)
    unknown = [n for n in names if n not in features]
    if unknown:
        raise DatasetError(
            f"categorical column(s) {', '.join(map(repr, unknown))} are not feature columns of "
            f"{where.path}; feature columns: {', '.join(features)} (or use auto / none)"
        )
    return set(names)


def _numeric_fix(categorical, column: str) -> str:
    if categorical == "none":
        return f"fix the cell, or one-hot encode the column with --categorical {column} (or auto)"
    # With auto every non-numeric feature column is encoded, so only a named list gets here.
    return f"fix the cell, or add {column!r} to --categorical to one-hot encode it"


def _numbers(
    values: list[str], numbers: np.ndarray | None, column: str, where: _Where, *, fix: str
) -> np.ndarray:
    """``numbers`` (the parsed column) checked finite; a non-numeric cell is named."""
    if numbers is None:
        row = next(i for i, v in enumerate(values) if not _is_number(v))
        raise DatasetError(f"{where(row, column)}: {values[row]!r} is not a number; {fix}")
    bad = ~np.isfinite(numbers)
    if bad.any():
        row = int(np.argmax(bad))
        raise DatasetError(
            f"{where(row, column)}: {values[row]!r} is not a finite number; replace it or drop "
            "the row"
        )
    return numbers


def _ids(values: list[str], column: str, where: _Where) -> np.ndarray:
    ids = []
    for row, text in enumerate(values):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not _INT64.min <= value <= _INT64.max:
            raise DatasetError(
                f"{where(row, column)}: {text!r} is not an integer id; sample ids must be unique "
                "integers (fix the cell, or name another id column with --id-column)"
            )
        ids.append(value)
    ids = np.asarray(ids, dtype=np.int64)
    unique, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = unique[counts > 1]
        rows = np.flatnonzero(ids == dup[0])
        raise DatasetError(
            f"{where.path}, column {column!r}: id {int(dup[0])} is on lines "
            f"{', '.join(str(where.lines[r]) for r in rows)} ({len(dup)} duplicated id(s) in all); "
            "sample ids must be unique"
        )
    return ids


def _labels(
    values: list[str], numbers: np.ndarray | None, column: str, where: _Where
) -> tuple[np.ndarray, list[str], bool]:
    """Class indices 0..K-1, the original label of each class, whether they differ."""
    if numbers is not None:
        numbers = _numbers(values, numbers, column, where, fix="fix the label")
        fractional = numbers != np.round(numbers)
        if fractional.any():
            row = int(np.argmax(fractional))
            raise DatasetError(
                f"{where(row, column)}: {values[row]!r} is not an integer class label; use integer "
                "or string labels (or task='regression')"
            )
        labels = numbers.astype(np.int64)
    else:  # any non-number makes every label a name: "1" and "cat" are both strings then
        labels = np.asarray(values, dtype=str)
    codes, names = _label_codes(labels)
    return codes, names, names != [str(i) for i in range(len(names))]


def _label_codes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    # np.unique sorts (numerically for numbers, lexicographically for strings) and gives each
    # sample the position of its label among the distinct labels: the 0..K-1 index.
    unique, codes = np.unique(labels, return_inverse=True)
    names = [str(v.item() if hasattr(v, "item") else v) for v in unique]
    return codes.astype(np.int64).reshape(-1), names


def _sorted_categories(values: set[str]) -> list[str]:
    # Numbers-as-categories (a named integer-coded column) read best in numeric order.
    if _parse_numbers(list(values)) is not None:
        return sorted(values, key=lambda v: (float(_parse_numbers([v])[0]), v))
    return sorted(values)


def _one_hot(values: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """One column per vocabulary entry; a value outside the vocabulary is all zeros."""
    position = {v: i for i, v in enumerate(vocabulary)}
    out = np.zeros((len(values), len(vocabulary)), dtype=np.float64)
    for row, value in enumerate(values):
        col = position.get(value)
        if col is not None:
            out[row, col] = 1.0
    return out


def _npz_array(archive, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:  # object arrays need pickle, which stays off for safety
        raise DatasetError(
            f"{path}: array {key!r} cannot be read without pickle ({exc}); save it with a "
            "numeric or string dtype, not dtype=object"
        ) from None
