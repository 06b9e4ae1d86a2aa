"""Reading data files as UTF-8 text, with ``file:line`` errors for bytes that are not UTF-8."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from framework.data.errors import DataError

if TYPE_CHECKING:
    from framework.data.readers._common import LineErrors


def _undecodable(path: Path, lineno: int, raw: bytes, exc: UnicodeDecodeError) -> DataError:
    bad = raw[exc.start:exc.end]
    return DataError(f"{path}:{lineno}", f"byte {bad.hex(' ')} at column {exc.start + 1} is not UTF-8",
                     "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8).")


def read_lines(path: Path, errors: "LineErrors | None" = None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of a UTF-8 text file, line endings removed.

    A line that is not UTF-8 is recorded in ``errors`` (``file:line`` and the byte) and yielded
    decoded with replacement characters, so line numbers stay right; without ``errors`` it raises.
    """
    path = Path(path)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            raw = raw.rstrip(b"\r\n")
            try:
                yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                error = _undecodable(path, lineno, raw, exc)
                if errors is None:
                    raise error from None
                errors.add(error)
                yield lineno, raw.decode("utf-8", errors="replace")


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text.

    Raises:
        DataError: naming ``file:line`` and the first byte that is not UTF-8.
    """
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        end = raw.find(b"\n", exc.start)
        line = raw[start:end if end >= 0 else len(raw)]
        shifted = UnicodeDecodeError("utf-8", line, exc.start - start, exc.end - start, exc.reason)
        raise _undecodable(Path(path), raw.count(b"\n", 0, exc.start) + 1, line, shifted) from None
