import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import write_fer2013_csv

from fer import FerError
from fer.data import formats, sources
from fer.params import DataParams


def test_local_folder_is_copied(demo_raw, tmp_path):
    out = sources.fetch(DataParams(source=str(demo_raw)), tmp_path / "raw")
    assert sorted(p.name for p in out.rglob("*.JPG")) == sorted(p.name for p in demo_raw.rglob("*.JPG"))


@pytest.mark.parametrize("fmt", ["zip", "gztar"])
def test_local_archive_is_extracted(demo_raw, tmp_path, fmt):
    archive = shutil.make_archive(str(tmp_path / "kdef"), fmt, demo_raw.parent, "raw")
    out = sources.fetch(DataParams(source=archive), tmp_path / "out")
    assert len(list(out.rglob("*.JPG"))) == len(list(demo_raw.rglob("*.JPG")))


def evil_tar(path, name=None, link=None):
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("ok/AF01ANS.JPG")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
        if link:
            info = tarfile.TarInfo("ok/link")
            info.type, info.linkname = tarfile.SYMTYPE, link
            tf.addfile(info)
        else:
            info = tarfile.TarInfo(name)
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))


@pytest.mark.parametrize(
    "kind, member", [("dotdot", "../escaped.JPG"), ("absolute", "/tmp/escaped.JPG"), ("link", None)]
)
def test_hostile_tar_is_refused_and_nothing_is_written(tmp_path, kind, member):
    archive = tmp_path / "evil.tar.gz"
    evil_tar(archive, member, link="../../etc/passwd" if kind == "link" else None)
    out = tmp_path / "x" / "out"
    with pytest.raises(FerError, match="refusing to extract"):
        sources.extract(archive, out)
    assert not (tmp_path / "x" / "escaped.JPG").exists()
    assert not any(out.rglob("*"))


def test_hostile_zip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/AF01ANS.JPG", b"x")
        zf.writestr("../escaped.JPG", b"x")
    with pytest.raises(FerError, match="outside its folder"):
        sources.extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.JPG").exists()


def test_fer2013_csv_file_is_a_source(tmp_path):
    write_fer2013_csv(
        tmp_path / "fer2013.csv", [(3, " ".join(["7"] * 2304), "Training"), (4, " ".join(["9"] * 2304), "PrivateTest")]
    )
    data = DataParams(source=str(tmp_path / "fer2013.csv"), format="fer2013")
    out = sources.fetch(data, tmp_path / "raw")
    images, _ = formats.scan(out, data)
    assert list(images["label"]) == ["happy", "sad"] and list(images["official"]) == ["train", "test"]
    with pytest.raises(FerError, match=r"fer2013.csv' is a .csv file.*set data.format=fer2013 \(it is kdef\)"):
        sources.check(DataParams(source=str(tmp_path / "fer2013.csv")))


def test_missing_source_says_what_is_accepted(tmp_path):
    with pytest.raises(FerError, match="does not exist; give kaggle:"):
        sources.fetch(DataParams(source=str(tmp_path / "nope")), tmp_path / "out")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FerError, match="is a file but neither an archive .* nor a .csv"):
        sources.check(DataParams(source=str(tmp_path / "notes.txt")))
    assert not (tmp_path / "out").exists()


def test_kaggle_without_network_fails_fast_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3t-key-123")
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):  # no network, even where there is
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(FerError) as e:
        sources.fetch(DataParams(source="kaggle:tom99763/testtt"), tmp_path / "out")
    msg = str(e.value)
    assert "could not download Kaggle dataset 'tom99763/testtt'" in msg
    assert "kaggle.json" in msg and "data.source=demo" in msg
    assert "s3cr3t-key-123" not in msg


def test_kaggle_without_credentials_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nokaggle"))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(FerError, match="No Kaggle credentials were found"):
        sources.kaggle_download("tom99763/testtt")


def test_kaggle_versioned_handle_comes_from_kagglehub_cache_offline(demo_raw, tmp_path, monkeypatch):
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_dataset_handle

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    handle, cache = parse_dataset_handle("tom99763/testtt/versions/1"), Cache()
    shutil.copytree(demo_raw, cache.get_path(handle))  # what a finished download leaves
    cache.mark_as_complete(handle)
    out = sources.fetch(DataParams(source="kaggle:tom99763/testtt/versions/1"), tmp_path / "raw")
    assert len(list(out.rglob("*.JPG"))) == len(list(demo_raw.rglob("*.JPG")))


@pytest.mark.parametrize(
    "status, expected",
    [
        (404, "Kaggle has no dataset 'nobody/nothing': check data.source"),
        (401, "Kaggle refused access to 'nobody/nothing' (HTTP 401): check the token"),
    ],
)
def test_kaggle_http_errors_say_what_to_check(monkeypatch, tmp_path, status, expected):
    import kagglehub
    import requests
    from kagglehub.exceptions import KaggleApiHTTPError

    response = requests.Response()
    response.status_code = status

    def refuse(handle):
        raise KaggleApiHTTPError(f"{status} Client Error. Authorization: Basic s3cr3t", response=response)

    monkeypatch.setattr(kagglehub, "dataset_download", refuse)
    with pytest.raises(FerError) as e:
        sources.fetch(DataParams(source="kaggle:nobody/nothing"), tmp_path / "out")
    assert expected in str(e.value) and "s3cr3t" not in str(e.value)


def test_empty_source_folder_is_an_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(FerError, match="holds no files"):
        sources.fetch(DataParams(source=str(tmp_path / "empty")), tmp_path / "out")


def zeros_archive(path, fmt, size=5_000_000):
    """An archive whose one member is `size` zero bytes: it compresses about 1,000 times."""
    if fmt == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("happy/AF01HAS.JPG", bytes(size))
    else:
        with tarfile.open(path, "w:gz") as tf:
            info = tarfile.TarInfo("happy/AF01HAS.JPG")
            info.size = size
            tf.addfile(info, io.BytesIO(bytes(size)))


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_an_archive_that_unpacks_far_beyond_its_size_is_refused_and_nothing_is_written(tmp_path, fmt):
    archive = tmp_path / f"bomb.{fmt}"
    zeros_archive(archive, fmt)
    out = tmp_path / "raw"
    with pytest.raises(
        FerError,
        match=r"bomb\.(zip|tar\.gz) \(\d+\.\d kB\) unpacks to 5\.0 MB, [\d,]+ times its size "
        r"\(more than 100x is refused.*unpack it yourself",
    ):
        sources.fetch(DataParams(source=str(archive)), out)
    assert not out.exists()


def test_an_archive_larger_than_the_free_disk_is_refused_and_nothing_is_written(tmp_path, monkeypatch, demo_raw):
    archive = shutil.make_archive(str(tmp_path / "kdef"), "gztar", demo_raw.parent, "raw")
    unpacked = sum(p.stat().st_size for p in demo_raw.rglob("*") if p.is_file())
    monkeypatch.setattr(sources.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    out = tmp_path / "raw"
    with pytest.raises(FerError, match=rf"unpacks to {unpacked / 1000:.1f} kB but only 1.0 kB is free on the disk"):
        sources.fetch(DataParams(source=archive), out)
    assert not out.exists()


def folder_with_links(tmp_path, demo_raw, *links):
    """A source folder KDEF/AF01 with two demo photos, plus symbolic links (path, target) inside it."""
    src = tmp_path / "src"
    (src / "KDEF" / "AF01").mkdir(parents=True)
    for name in ("AF01ANS.JPG", "AF01HAS.JPG"):
        shutil.copy(next(demo_raw.rglob(name)), src / "KDEF" / "AF01" / name)
    for path, target in links:
        (src / path).symlink_to(target)
    return src


def test_a_link_that_loops_back_is_skipped_and_named(tmp_path, demo_raw):
    src = folder_with_links(tmp_path, demo_raw, ("KDEF/loop", ".."), ("KDEF/AF01/self", "."))
    lines = []
    out = sources.fetch(DataParams(source=str(src)), tmp_path / "raw", warn=lines.append)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["KDEF/AF01/AF01ANS.JPG", "KDEF/AF01/AF01HAS.JPG"]
    assert not (out / "KDEF" / "loop").exists() and not (out / "KDEF" / "AF01" / "self").exists()
    assert lines == [
        "skipped KDEF/loop: symbolic link loops back to its own folder (-> ..)",
        "skipped KDEF/AF01/self: symbolic link loops back to its own folder (-> .)",
    ]


def test_a_link_to_nothing_is_skipped_and_named(tmp_path, demo_raw):
    src = folder_with_links(tmp_path, demo_raw, ("KDEF/AF01/AF01SAS.JPG", "gone.JPG"), ("KDEF/me", "me"))
    lines = []
    out = sources.fetch(DataParams(source=str(src)), tmp_path / "raw", warn=lines.append)
    assert sorted(p.name for p in out.rglob("*")) == ["AF01", "AF01ANS.JPG", "AF01HAS.JPG", "KDEF"]
    assert lines == [
        "skipped KDEF/me: symbolic link loops back to itself (-> me)",
        "skipped KDEF/AF01/AF01SAS.JPG: symbolic link points to nothing (-> gone.JPG)",
    ]


def test_download_stage_with_a_looping_link_says_so_in_one_short_line(tmp_path, demo_raw):
    import subprocess
    import sys

    import yaml

    src = folder_with_links(tmp_path, demo_raw, ("KDEF/loop", ".."))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"source": str(src)}}))
    stage = Path(__file__).resolve().parents[1] / "src" / "download.py"
    # A loop followed without end would copy until the disk fills: the timeout stops that.
    p = subprocess.run([sys.executable, str(stage), "raw"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "download: skipped KDEF/loop: symbolic link loops back to its own folder (-> ..)\n" in p.stdout
    assert "download: 2 files from" in p.stdout
    assert max(len(line) for line in (p.stdout + p.stderr).splitlines()) < 300


def test_a_file_that_cannot_be_copied_is_one_short_error(tmp_path, demo_raw, monkeypatch):
    src = folder_with_links(tmp_path, demo_raw)

    def refuse(source, dst):
        raise OSError(13, "Permission denied", str(source) + "/x" * 200)

    monkeypatch.setattr(sources, "_link_or_copy", refuse)
    with pytest.raises(
        FerError,
        match=r"could not copy 2 file\(s\) from .*src; the first, KDEF/AF01/AF01(AN|HA)S.JPG: "
        r"\[Errno 13\] Permission denied",
    ) as e:
        sources.fetch(DataParams(source=str(src)), tmp_path / "raw")
    assert len(str(e.value)) < 300 + len(str(src))
