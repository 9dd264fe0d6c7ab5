"""Where raw images come from: Kaggle, a local folder or archive, or the demo generator.

`fetch()` fills an empty folder with the source's files, unchanged: reading file names
and labels is the split stage's job, so every source goes down the same code path.
"""

from __future__ import annotations

import errno
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from fer import FerError
from fer.params import DataParams

ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
KAGGLE_FIX = (
    "Fix one of: (1) put your Kaggle API token in ~/.kaggle/kaggle.json or set KAGGLE_USERNAME "
    "and KAGGLE_KEY (kaggle.com > Settings > API > Create New Token); (2) download the dataset "
    "elsewhere and set data.source to the folder or archive (dvc exp run -S data.source=PATH); "
    "(3) try the pipeline on built-in faces with data.source=demo."
)


def check(data: DataParams) -> None:
    """A FerError unless `data.source` names something `fetch()` can read: `demo`, `kaggle:...`,
    or an existing folder, archive or fer2013.csv (the check stage calls this before DVC
    deletes the last download)."""
    source = data.source
    if source == "demo" or source.startswith("kaggle:") or Path(source).is_dir():
        return
    if Path(source).is_file():
        if not source.lower().endswith((*ARCHIVES, ".csv")):
            raise FerError(
                f"data.source {source!r} is a file but neither an archive ({', '.join(ARCHIVES)}) "
                "nor a .csv (fer2013.csv)"
            )
        if source.lower().endswith(".csv") and data.format != "fer2013":
            raise FerError(
                f"data.source {source!r} is a .csv file, which is read as FER2013's "
                f"emotion,pixels,Usage table: set data.format=fer2013 (it is {data.format})"
            )
        return
    raise FerError(
        f"data.source {source!r} does not exist; give kaggle:<owner>/<dataset>, "
        "a local folder, a .zip/.tar.gz archive, a fer2013.csv, or demo"
    )


def fetch(data: DataParams, out_dir: str | Path, warn: Callable[[str], None] = print) -> Path:
    """Put the images named by `data.source` into `out_dir` (created, must not exist).

    warn: called with one line for each symbolic link in a source folder that is skipped
    because it loops or leads nowhere (see `_copy_tree`).
    """
    out_dir = Path(out_dir)
    source = data.source
    check(data)
    if source == "demo":
        from fer.data import synthetic

        synthetic.generate(out_dir, subjects=data.demo_subjects, angles=data.demo_angles, size=data.demo_size)
    elif source.startswith("kaggle:"):
        _copy_tree(kaggle_download(source.removeprefix("kaggle:")), out_dir, warn)
    elif Path(source).is_dir():
        _copy_tree(Path(source), out_dir, warn)
    elif source.lower().endswith(".csv"):
        out_dir.mkdir(parents=True)
        _link_or_copy(source, out_dir / Path(source).name)
    else:
        extract(source, out_dir)
    if not any(p.is_file() for p in out_dir.rglob("*")):
        raise FerError(f"data.source {source!r} holds no files")
    return out_dir


def kaggle_credentials() -> bool:
    """Whether a Kaggle API token is configured where kagglehub looks for one."""
    home = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return bool(
        (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"))
        or os.environ.get("KAGGLE_API_TOKEN")
        or (home / "kaggle.json").is_file()
        or (home / "access_token").is_file()
    )


def kaggle_download(handle: str) -> Path:
    """Download (or reuse kagglehub's cache of) a Kaggle dataset; return its folder.

    handle: `owner/dataset` or `owner/dataset/versions/N`. A versioned handle already in
    kagglehub's cache needs neither network nor credentials.
    """
    import kagglehub

    try:
        return Path(kagglehub.dataset_download(handle))
    except Exception as e:  # kagglehub raises requests, HTTP and its own errors alike
        # The message of a failed request can hold the request's headers; keep only its kind
        # and first line so that no secret reaches the log.
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status == 404:
            raise FerError(
                f"Kaggle has no dataset {handle!r}: check data.source against the dataset's page, "
                f"kaggle.com/datasets/{handle.split('/versions/')[0]}"
            ) from None
        if status in (401, 403):
            raise FerError(
                f"Kaggle refused access to {handle!r} (HTTP {status}): check the token in "
                "~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY, and accept the dataset's "
                "rules on its page if it has any"
            ) from None
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        creds = "" if kaggle_credentials() else " No Kaggle credentials were found."
        raise FerError(f"could not download Kaggle dataset {handle!r} ({reason}).{creds}\n{KAGGLE_FIX}") from None


def _link_or_copy(src, dst) -> None:
    # Hard links cost no space when the source is on the same disk (kagglehub's cache is).
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path, warn: Callable[[str], None]) -> None:
    """Copy the folder `src` to `dst`, following symbolic links and linking or copying each file.

    A symbolic link that leads back to a folder it sits in would be followed without end,
    and one that leads nowhere has nothing to copy: each is skipped, with one line to `warn`
    naming it by its path in `src`. Any other file that cannot be copied is a FerError.
    """

    def skip_bad_links(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(src)
        # The real folders on the way down to this one, links resolved: a link to one of them,
        # or to a folder that holds one, loops.
        ancestors = [Path(os.path.realpath(src.joinpath(*rel.parts[:i]))) for i in range(len(rel.parts) + 1)]
        skipped = set()
        for name in sorted(names):
            reason = _bad_link(os.path.join(folder, name), ancestors)
            if reason:
                warn(f"skipped {rel / name}: {reason}")
                skipped.add(name)
        return skipped

    try:
        shutil.copytree(src, dst, copy_function=_link_or_copy, symlinks=False, ignore=skip_bad_links)
    except shutil.Error as e:
        failed = [f for f in e.args[0] if isinstance(f, tuple)]
        first = f"{os.path.relpath(failed[0][0], src)}: {failed[0][2]}" if failed else str(e)
        first = first if len(first) <= 200 else first[:197] + "..."  # an OSError repeats the whole path
        raise FerError(f"could not copy {len(failed)} file(s) from {src}; the first, {first}") from None


def _bad_link(path: str, ancestors: list[Path]) -> str | None:
    """Why the symbolic link `path` cannot be followed, or None if it can (or is no link)."""
    if not os.path.islink(path):
        return None
    target = os.readlink(path)
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return f"symbolic link loops back to itself (-> {target})"
        return f"symbolic link points to nothing (-> {target})"
    real = Path(os.path.realpath(path))
    if real.is_dir() and any(a.is_relative_to(real) for a in ancestors):
        return f"symbolic link loops back to its own folder (-> {target})"
    return None


# An archive that unpacks to more than this many times its own size is refused: real image
# datasets compress little (JPEG and PNG are compressed already; FER2013's CSV about 3x),
# while a zip bomb reaches 1,000x and more.
MAX_RATIO = 100


def extract(archive: str | Path, out_dir: str | Path) -> None:
    """Unpack a .zip or tar archive into `out_dir`, refusing members that would land outside it.

    Absolute paths, `..` components and links are refused before anything is written, and
    so is an archive that unpacks to more than MAX_RATIO times its size or to more than
    the free disk space.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    root = out_dir.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(info.filename, root, archive, link=(info.external_attr >> 16) & 0o170000 == 0o120000)
            _check_size(archive, sum(info.file_size for info in zf.infolist()), out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            zf.extractall(out_dir)
        return
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                _check_member(m.name, root, archive, link=m.issym() or m.islnk())
            _check_size(archive, sum(m.size for m in members if m.isfile()), out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            # The "data" filter re-checks the same rules and drops special files.
            tf.extractall(out_dir, members=members, filter="data")
    except tarfile.TarError as e:
        raise FerError(f"cannot read archive {archive}: {e}") from None


def _check_size(archive: Path, unpacked: int, out_dir: Path) -> None:
    """A FerError if `unpacked` bytes are too many for `archive`'s size or for the disk under `out_dir`."""
    packed = archive.stat().st_size
    if unpacked > MAX_RATIO * packed:
        raise FerError(
            f"archive {archive} ({_size(packed)}) unpacks to {_size(unpacked)}, {unpacked / packed:,.0f} "
            f"times its size (more than {MAX_RATIO}x is refused, as a zip bomb would be); if you "
            "trust it, unpack it yourself and set data.source to the folder"
        )
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if unpacked > free:
        raise FerError(
            f"archive {archive} unpacks to {_size(unpacked)} but only {_size(free)} is free on the disk "
            f"of {existing}; free some space and run again"
        )


def _size(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} bytes"
    for unit in ("kB", "MB"):
        n /= 1000
        if n < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:,.1f} GB"


def _check_member(name: str, root: Path, archive: Path, link: bool) -> None:
    if link:
        raise FerError(f"archive {archive} holds a link ({name}); refusing to extract it")
    if name.startswith(("/", "\\")) or ".." in Path(name).parts or not (root / name).resolve().is_relative_to(root):
        raise FerError(f"archive {archive} holds a path outside its folder ({name}); refusing to extract it")
