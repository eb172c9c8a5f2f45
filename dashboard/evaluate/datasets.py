"""Labelled datasets: an ImageFolder folder, a CSV of ``filename,label``, or an untrusted .zip.

Opening a dataset lists its entries (names and labels only); image bytes are read one entry at
a time by ``Dataset.read``, so nothing is held in memory. A zip is validated as a whole before
anything in it is read: a cap on entries, on the total uncompressed size and on the compression
ratio, and no name that is absolute or climbs out with ``..``. Links are ignored, files that are
not images are skipped and counted. Nothing is ever extracted to disk.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dashboard.errors import ArchiveRefusedError, CorruptImageError, DatasetError, EmptyImageError

# The extensions dashboard.images knows; anything else in a dataset is skipped and counted.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib",
                            ".tif", ".tiff"})
CSV_HEADER = ("filename", "label")
MAX_CSV_BYTES = 16 * 2**20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps applied to an uploaded archive before anything in it is read."""

    max_archive_bytes: int = 200 * 2**20  # the .zip file itself
    max_entries: int = 10_000
    max_total_bytes: int = 1024 * 2**20  # sum of the declared uncompressed sizes
    max_ratio: float = 100.0  # uncompressed / compressed, per entry and for the whole archive


@dataclass(frozen=True)
class Entry:
    """One labelled image of a dataset, not yet read."""

    name: str  # shown in reports: "cat/001.jpg"
    label: str  # the class name as the dataset gives it
    ref: str  # file path (folder, CSV) or member name (zip)


@dataclass
class Dataset:
    """Entries in a stable order, the classes, and what was skipped while listing."""

    kind: str  # "folder" | "csv" | "zip"
    entries: list[Entry]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    _zip: zipfile.ZipFile | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted({e.label for e in self.entries}))

    def read(self, entry: Entry) -> bytes:
        """The raw bytes of one entry (read now, not before)."""
        if self._zip is None:
            try:
                return Path(entry.ref).read_bytes()
            except OSError:
                raise EmptyImageError("The file could not be read.") from None
        info = self._zip.getinfo(entry.ref)
        try:
            with self._zip.open(info) as f:
                data = f.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise CorruptImageError("This entry of the archive is damaged and could not be read.") from exc
        if len(data) > info.file_size:  # zipfile stops at the declared size; never trust it alone
            raise CorruptImageError("This entry of the archive is larger than it declares.")
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_dataset(path: str | os.PathLike, limits: ArchiveLimits | None = None, *, archive_only: bool = False
                 ) -> Dataset:
    """A folder (ImageFolder layout), a .csv of filename,label, or a .zip of either.

    ``archive_only`` (uploads): only a zip is accepted, whatever its name, so that no upload can
    make the server read files by names it chose."""
    path = Path(path).absolute()  # entries name files that Ray workers (another cwd) must find
    if archive_only:
        if not path.is_file() or not zipfile.is_zipfile(path):
            raise DatasetError("Upload a .zip file: one folder per class (cat/1.jpg, dog/2.jpg ...), "
                               "or the images with a CSV file of filename,label rows.")
        return read_zip(path, limits or ArchiveLimits())
    if path.is_dir():
        return read_folder(path)
    if not path.is_file():
        raise DatasetError("The dataset was not found: give a folder, a .zip or a .csv file.")
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        return read_zip(path, limits or ArchiveLimits())
    raise DatasetError("A dataset is a folder with one subfolder per class, a .zip of such a folder, "
                       "or a .csv file of filename,label rows.")


# --- folder -------------------------------------------------------------------------------------
def read_folder(root: Path) -> Dataset:
    """ImageFolder layout: root/<class>/**/<image>; files directly under root are skipped."""
    entries, skipped = [], []
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            skipped.append((child.name, "not inside a class folder"))
            continue
        for file in _walk(child):
            name = file.relative_to(root).as_posix()
            if file.suffix.lower() in IMAGE_SUFFIXES:
                entries.append(Entry(name, child.name, str(file)))
            else:
                skipped.append((name, "not an image file"))
    return _non_empty(Dataset("folder", entries, skipped))


def _walk(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


# --- CSV ----------------------------------------------------------------------------------------
def read_csv(path: Path) -> Dataset:
    """Rows of filename,label (an optional header row); file names relative to the CSV's folder."""
    if path.stat().st_size > MAX_CSV_BYTES:
        raise DatasetError(f"The CSV file is larger than {MAX_CSV_BYTES // 2**20} MB.")
    rows = _csv_rows(path.read_bytes())
    entries, skipped = [], []
    for filename, label in rows:
        if Path(filename).suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((filename, "not an image file"))
            continue
        entries.append(Entry(filename, label, str(path.parent / filename)))
    return _non_empty(Dataset("csv", entries, skipped))


def _csv_rows(data: bytes) -> list[tuple[str, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError("The CSV file is not UTF-8 text.") from None
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise DatasetError(f"Line {number} of the CSV file is not a filename,label pair.")
        pair = (row[0].strip(), row[1].strip())
        if number == 1 and tuple(p.lower() for p in pair) == CSV_HEADER:
            continue
        rows.append(pair)
    return rows


# --- zip ----------------------------------------------------------------------------------------
def read_zip(path: Path, limits: ArchiveLimits) -> Dataset:
    """Validate the whole archive, then list it as an ImageFolder or through one CSV inside."""
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        raise ArchiveRefusedError(f"The archive is {_mb(size)}; the limit is {_mb(limits.max_archive_bytes)}.")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise DatasetError("The file is not a readable .zip archive.") from None
    try:
        files, skipped = _checked_members(zf, size, limits)
        dataset = _zip_layout(zf, files, skipped)
    except BaseException:
        zf.close()
        raise
    dataset._zip = zf
    return dataset


def _checked_members(zf: zipfile.ZipFile, archive_size: int, limits: ArchiveLimits
                     ) -> tuple[list[zipfile.ZipInfo], list[tuple[str, str]]]:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise ArchiveRefusedError(f"The archive holds {len(infos):,} entries; the limit is {limits.max_entries:,}.")
    total = 0
    files, skipped = [], []
    for info in infos:
        name = info.filename
        parts = re.split(r"[/\\]", name)
        if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts:
            raise ArchiveRefusedError(
                f"The archive contains a name that points outside it ({_shown(name)}): absolute "
                "paths and '..' are refused. Zip the folder again from inside its parent folder.")
        if info.is_dir():
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            skipped.append((name, "link (ignored)"))
            continue
        if info.flag_bits & 0x1:
            skipped.append((name, "encrypted (ignored)"))
            continue
        total += info.file_size
        if info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ArchiveRefusedError(
                f"An entry of the archive expands more than {limits.max_ratio:g} times ({_shown(name)}), "
                "as a zip bomb does; the archive is refused.")
        files.append(info)
    if total > limits.max_total_bytes:
        raise ArchiveRefusedError(
            f"The archive expands to {_mb(total)}; the limit is {_mb(limits.max_total_bytes)}.")
    if total > limits.max_ratio * max(archive_size, 1):
        raise ArchiveRefusedError(
            f"The archive expands more than {limits.max_ratio:g} times, as a zip bomb does; it is refused.")
    return files, skipped


def _zip_layout(zf: zipfile.ZipFile, files: list[zipfile.ZipInfo], skipped: list[tuple[str, str]]) -> Dataset:
    kept = []
    for info in files:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if parts[0] == "__MACOSX" or parts[-1].startswith("._"):
            skipped.append((info.filename, "macOS metadata (ignored)"))
        else:
            kept.append((parts, info))
    # A zipped folder usually has one top folder above the class folders: look through it.
    while kept and all(len(p) > 2 for p, _ in kept) and len({p[0] for p, _ in kept}) == 1:
        kept = [(p[1:], info) for p, info in kept]
    csvs = [(p, info) for p, info in kept if len(p) == 1 and p[0].lower().endswith(".csv")]
    if len(csvs) == 1:
        return _zip_csv(zf, csvs[0][1], kept, skipped)
    entries = []
    for parts, info in kept:
        name = "/".join(parts)
        if len(parts) < 2:
            skipped.append((name, "not inside a class folder"))
        elif PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((name, "not an image file"))
        else:
            entries.append(Entry(name, parts[0], info.filename))
    entries.sort(key=lambda e: e.name)
    return _non_empty(Dataset("zip", entries, skipped))


def _zip_csv(zf: zipfile.ZipFile, csv_info: zipfile.ZipInfo, kept, skipped) -> Dataset:
    if csv_info.file_size > MAX_CSV_BYTES:
        raise DatasetError(f"The CSV file in the archive is larger than {MAX_CSV_BYTES // 2**20} MB.")
    members = {"/".join(parts): info.filename for parts, info in kept}
    entries = []
    for filename, label in _csv_rows(zf.read(csv_info)):
        key = filename.replace("\\", "/")
        while key.startswith("./"):
            key = key[2:]
        if key not in members:
            skipped.append((filename, "listed in the CSV but not in the archive"))
        elif PurePosixPath(key).suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((filename, "not an image file"))
        else:
            entries.append(Entry(key, label, members[key]))
    return _non_empty(Dataset("zip", entries, skipped))


# --- helpers ------------------------------------------------------------------------------------
def _non_empty(dataset: Dataset) -> Dataset:
    if not dataset.entries:
        dataset.close()
        raise DatasetError(
            "No labelled images were found: put the images in one subfolder per class "
            "(cat/1.jpg, dog/2.jpg ...) or list them in a CSV file of filename,label rows.")
    return dataset


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} KB"


def _shown(name: str, limit: int = 60) -> str:
    """An archive name as quoted in a message: printable and short."""
    clean = "".join(c if c.isprintable() else "?" for c in name)
    return repr(clean if len(clean) <= limit else clean[: limit - 1] + "…")
