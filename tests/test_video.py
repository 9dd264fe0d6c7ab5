"""Video in, per-face tracks out: ids kept, flicker smoothed, shares that add up, a broken file's
frames kept, flat memory, and the same face scores as fer-predict gives a photo."""

import json
import shutil
import tracemalloc

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import tiny_checkpoint
from PIL import Image

from fer import FerError
from fer.data import synthetic
from fer.use.predict import TorchModel, predict_files
from fer.use.predict import main as predict_main
from fer.use.tracking import Track, smooth
from fer.use.video import main, process

CLASSES = ["angry", "happy", "neutral", "sad"]
FPS = 15
SIZE = (320, 240)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    params = {"epochs": 1, "pretrained": False}
    tiny_checkpoint(CLASSES, epoch=1, val_acc=0.5, params=params, temperature={"none": 1.5, "flip": 1.4})[1].save(path)
    return path


def write_video(path, frames=60):
    """Person A walks along the top from the left and is gone after frame 44; person B comes
    in at frame 25 at the bottom right and stays."""
    return synthetic.video(
        path,
        [
            {"subject": 0, "start": (4, 0), "end": (136, 0), "frames": (0, 44)},
            {"subject": 1, "start": (216, 110), "end": (216, 110), "frames": (25, frames - 1)},
        ],
        frames,
        SIZE,
        FPS,
    )


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "walk.avi")


@pytest.fixture(scope="module")
def run(video, checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    assert (
        main(
            [str(video), "--out", str(out), "--checkpoint", str(checkpoint), "--device", "cpu", "--annotate", "--json"]
        )
        == 0
    )
    return out


def test_each_person_keeps_one_track_id_while_in_view(run):
    frames = pd.read_csv(run / "frames.csv")
    assert sorted(frames["track"].unique()) == [1, 2]
    a, b = frames[frames["track"] == 1], frames[frames["track"] == 2]
    assert a["frame"].tolist() == list(range(45)) and b["frame"].tolist() == list(range(25, 60))
    assert a["x"].is_monotonic_increasing and a["x"].iloc[-1] - a["x"].iloc[0] > 100  # A walks right
    assert b["x"].std() < 2 and (b["y"] > 100).all()  # B stays put at the bottom
    assert frames["time"].tolist() == pytest.approx((frames["frame"] / FPS).tolist(), abs=1e-4)
    for c in CLASSES:  # raw and smoothed probabilities, both
        assert {c, f"smoothed_{c}"} <= set(frames.columns)
    assert frames[CLASSES].sum(1).to_numpy() == pytest.approx(1, abs=1e-5)
    as_json = pd.DataFrame(json.loads(line) for line in (run / "frames.jsonl").read_text().splitlines())
    pd.testing.assert_frame_equal(as_json, frames, check_dtype=False)


def test_the_summary_shares_add_up_and_say_how_long_each_track_was_in_view(run):
    tracks = pd.read_csv(run / "tracks.csv")
    assert tracks["track"].tolist() == [1, 2] and tracks["frames"].tolist() == [45, 35]
    assert tracks["seconds"].tolist() == pytest.approx([45 / FPS, 35 / FPS], abs=1e-3)
    assert tracks["first_seen"].tolist() == pytest.approx([0, 25 / FPS], abs=1e-4)
    shares = tracks[[f"share_{c}" for c in CLASSES]]
    assert shares.sum(1).tolist() == pytest.approx([1, 1])
    frames = pd.read_csv(run / "frames.csv")
    for t in tracks.itertuples():
        assert t.dominant == frames[frames["track"] == t.track]["smoothed_label"].mode()[0]


def test_the_annotated_video_and_the_timeline_are_written(run):
    cap = cv2.VideoCapture(str(run / "annotated.mp4"))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 60
    assert (run / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_a_face_scores_in_a_video_as_fer_predict_scores_it_in_a_photo(video, run, checkpoint, tmp_path):
    cap = cv2.VideoCapture(str(video))
    for _ in range(30):
        ok, bgr = cap.read()
    Image.fromarray(bgr[..., ::-1]).save(tmp_path / "frame29.png")  # lossless: the same pixels
    photo, _ = predict_files([tmp_path / "frame29.png"], TorchModel(checkpoint, "cpu"))
    frames = pd.read_csv(run / "frames.csv")
    in_video = frames[frames["frame"] == 29].sort_values("x")
    np.testing.assert_allclose(in_video[CLASSES].to_numpy(), photo.sort_values("x")[CLASSES].to_numpy(), atol=1e-5)


def test_smoothing_removes_flicker_and_means_the_same_at_any_frame_rate():
    switch_times = {}
    for fps in (15, 60):
        t = np.arange(0, 4, 1 / fps)
        wobble = np.where(np.arange(len(t)) % 2 == 0, -0.15, 0.15)
        p_happy = np.where(t < 2, 0.42, 0.58) + wobble  # flickers every frame; really changes at 2 s
        probs = np.stack([1 - p_happy, p_happy], 1)
        track = Track(1, None, 0)
        smoothed = np.array([smooth(track, p, time, tau=0.5) for p, time in zip(probs, t)])
        raw_labels, labels = probs.argmax(1), smoothed.argmax(1)
        assert (np.diff(raw_labels) != 0).sum() > len(t) / 2
        assert (np.diff(labels) != 0).sum() == 1 and labels[0] == 0 and labels[-1] == 1
        switch_times[fps] = t[np.argmax(labels == 1)]
    assert 2 < switch_times[15] < 3 and switch_times[60] == pytest.approx(switch_times[15], abs=0.15)
    track = Track(1, None, 0)
    assert (
        smooth(track, np.array([0.2, 0.8]), 0, tau=0)[1] == 0.8 and smooth(track, np.array([0.9, 0.1]), 1, 0)[0] == 0.9
    )


def test_a_video_cut_short_keeps_the_frames_before_the_break(video, checkpoint, tmp_path, capsys):
    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    assert main([str(cut), "--out", str(tmp_path / "out"), "--checkpoint", str(checkpoint), "--json"]) == 0
    frames = pd.read_csv(tmp_path / "out" / "frames.csv")
    assert 20 < frames["frame"].max() < 59 and frames["frame"].min() == 0
    lines = (tmp_path / "out" / "frames.jsonl").read_text().splitlines()
    assert len([json.loads(line) for line in lines]) == len(frames)  # every record whole
    assert "broke off after frame" in capsys.readouterr().err


def test_a_file_that_is_no_video_says_so(checkpoint, tmp_path, capsys):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(SystemExit, match="cannot open .*notes.mp4 as a video"):
        main([str(tmp_path / "notes.mp4"), "--out", str(tmp_path / "out"), "--checkpoint", str(checkpoint)])
    with pytest.raises(FerError, match="no such video file"):
        process(str(tmp_path / "missing.mp4"), TorchModel(checkpoint, "cpu"), tmp_path / "out")


def test_fer_predict_given_a_video_names_fer_video(video, checkpoint):
    with pytest.raises(SystemExit, match="is a video: fer-video .*walk.avi --out DIR"):
        predict_main([str(video), "--checkpoint", str(checkpoint)])


def test_memory_stays_flat_whatever_the_length(checkpoint, tmp_path):
    model = TorchModel(checkpoint, "cpu", "none")
    peaks = {}
    for frames in (40, 160):
        path = write_video(tmp_path / f"v{frames}.avi", frames)
        tracemalloc.start()
        done = process(str(path), model, tmp_path / f"out{frames}", detect_every=8)
        peaks[frames] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert done["frames"] == frames
    assert peaks[160] < peaks[40] * 1.25


def test_an_out_that_is_a_file_stops_before_any_work(video, checkpoint, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(SystemExit) as stop:
        main([str(video), "--out", str(tmp_path / "taken"), "--checkpoint", str(checkpoint)])
    assert "--out" in str(stop.value.code) and "is a file, not a folder" in str(stop.value.code)


@pytest.mark.parametrize(
    "args, named",
    [
        (["--max-frames", "0"], "--max-frames"),
        (["--batch-size", "0"], "--batch-size"),
        (["--detect-every", "0"], "--detect-every is 1 or more (got 0)"),
        (["--smooth", "-1"], "--smooth is 0 seconds or more (got -1)"),
        (["--min-confidence", "2"], "--min-confidence is a probability, 0 to 1 (got 2)"),
    ],
)
def test_each_bad_flag_is_named(video, checkpoint, tmp_path, capsys, args, named):
    with pytest.raises(SystemExit):
        main([str(video), "--out", str(tmp_path / "out"), "--checkpoint", str(checkpoint), *args])
    assert named in capsys.readouterr().err


def test_a_second_run_leaves_nothing_of_the_first(video, checkpoint, run, tmp_path):
    out = shutil.copytree(run, tmp_path / "out")
    assert {"annotated.mp4", "frames.jsonl"} <= {p.name for p in out.iterdir()}
    assert main([str(video), "--out", str(out), "--checkpoint", str(checkpoint), "--max-frames", "5"]) == 0
    assert not (out / "annotated.mp4").exists() and not (out / "frames.jsonl").exists()
    assert pd.read_csv(out / "frames.csv")["frame"].max() == 4
