"""Curation of the real-media corpus: cuts split clips, one identity per clip, centred crops, every reject
with its reason and value, nothing good lost, and the same result on a re-run."""

from __future__ import annotations

import av
import numpy as np
import pytest

from dualforce_core.curation import (
    REJECT_REASONS,
    CurationConfig,
    CurationResult,
    FaceModels,
    align_crop,
    curate_frames,
    curate_video,
    invert_affine,
    iter_clip_crops,
    transform_points,
    video_frames,
)
from dualforce_core.curation import corpus as corpus_module
from dualforce_core.data import media
from tests.curation.curation_fixtures import TEST_CONFIG, Corpus

SAME_PERSON = 0.6


def shot_of(corpus: Corpus, frame: int) -> dict:
    return next(s for s in corpus.truth.shots if s["start"] <= frame < s["end"])


def test_corpus_is_a_real_talking_clip(corpus: Corpus) -> None:
    info = media.probe(corpus.path)
    assert info.has_audio and not info.variable_rate
    assert info.frame_count == len(corpus.truth.faces) == corpus.truth.shots[-1]["end"]
    audio, _ = media.decode_audio_track(corpus.path, 16000)
    with av.open(str(corpus.path)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    for shot in corpus.truth.shots:
        # espeak-ng speech in every shot (its sentence starts at the shot's first sample).
        piece = audio[round(shot["start"] / 25 * 16000) : round(shot["end"] / 25 * 16000)]
        assert np.sqrt(np.mean(piece**2)) > 0.01, shot["name"]


def test_cuts_are_found_and_split_the_clips(corpus: Corpus, curated: CurationResult) -> None:
    assert curated.cuts == corpus.truth.cuts
    for clip in curated.clips:
        assert shot_of(corpus, clip.start) is shot_of(corpus, clip.end - 1), (clip.start, clip.end)


def test_each_clip_holds_one_identity(corpus: Corpus, curated: CurationResult) -> None:
    assert curated.clips
    for clip in curated.clips:
        people = set()
        for n, frame in enumerate(range(clip.start, clip.end)):
            source = transform_points(clip.landmarks[n], invert_affine(clip.affines[n]))
            people.add(corpus_module.truth_face(corpus.truth, frame, source)["identity"])
        assert len(people) == 1, (clip.start, clip.end, people)
        person = people.pop()
        distances = {
            name: float(np.linalg.norm(clip.embedding - e)) for name, e in corpus.photo_embeddings.items()
        }
        assert distances[person] < SAME_PERSON, distances
        assert all(d >= SAME_PERSON for name, d in distances.items() if name != person), distances


def test_crops_are_centred_on_the_face_at_the_configured_scale(
    corpus: Corpus, curated: CurationResult
) -> None:
    """The eye centre and mouth centre of the ground-truth face land where the LivePortrait crop of the
    ground-truth landmarks puts them, within a few pixels of the 256-px crop, at the configured scale."""
    errors = corpus_module.centring_errors(curated.clips, corpus.truth, TEST_CONFIG.align)
    mean, worst = errors.mean(axis=0), errors.max(axis=0)
    side = np.abs(errors[:, 2])
    print(
        f"\ncrop centring error over {len(errors)} frames at {TEST_CONFIG.crop_size} px: eye centre mean "
        f"{mean[0]:.2f} max {worst[0]:.2f} px, mouth centre mean {mean[1]:.2f} max {worst[1]:.2f} px; "
        f"crop side error mean {side.mean() * 100:.2f}% max {side.max() * 100:.2f}%"
    )
    assert len(errors) == sum(c.frames for c in curated.clips)
    assert mean[:2].max() < 1.0 and worst[:2].max() < 3.0
    assert side.mean() < 0.02 and side.max() < 0.04


def test_clip_crops_are_the_aligned_crop(corpus: Corpus, curated: CurationResult) -> None:
    """The second pass (`iter_clip_crops`) renders what `align_crop` makes of the true landmarks."""
    first, last = curated.clips[0], curated.clips[-1]
    windows = [first.window(first.start, 9), first.window(first.start + 8, 9), last.window(last.end - 9, 9)]
    assert windows[1].affines.shape == (9, 2, 3)
    np.testing.assert_array_equal(windows[1].affines[0], first.affines[8])
    crops = list(iter_clip_crops(video_frames(corpus.path), windows, size=128))
    assert [clip.start for clip, _ in crops] == [w.start for w in windows]
    source = list(video_frames(corpus.path))
    for clip, images in crops:
        assert images.shape == (9, 128, 128, 3)
        for n in (0, 8):
            frame = clip.start + n
            truth = np.asarray(corpus.truth.faces[frame][0]["landmarks"])
            reference, _ = align_crop(source[frame], truth, 128)
            assert np.abs(images[n].astype(float) - reference.astype(float)).mean() < 6.0


def test_bad_segments_are_rejected_with_reasons(corpus: Corpus, curated: CurationResult) -> None:
    config = TEST_CONFIG
    by_shot: dict[str, list] = {s["name"]: [] for s in corpus.truth.shots}
    for reject in curated.rejects:
        by_shot[shot_of(corpus, reject.start)["name"]].append(reject)
        assert shot_of(corpus, reject.start) is shot_of(corpus, reject.end - 1)
        assert reject.detail and reject.reason in REJECT_REASONS
    print("\nrejects: " + "; ".join(f"{r.start}-{r.end} {r.reason}={r.value:.3g}" for r in curated.rejects))
    for shot in corpus.truth.shots:
        rejects = by_shot[shot["name"]]
        expect = shot["expect"]
        if expect == "clip":
            assert all(r.reason == "secondary_face" for r in rejects), rejects
            continue
        assert rejects, shot["name"]
        reasons = {r.reason for r in rejects}
        assert reasons == {expect}, (shot["name"], reasons)
        covered = set().union(*(range(r.start, r.end) for r in rejects))
        assert covered == set(range(shot["start"], shot["end"])), shot["name"]
        values = [r.value for r in rejects]
        if expect == "no_face":
            assert values == [0.0]
        elif expect == "several_faces":
            assert len(rejects) == 2 and values == [2.0, 2.0]  # both faces, two faces each
        elif expect == "tiny_face":
            assert all(v < config.min_face_px for v in values)
        elif expect == "blur":
            assert all(v < config.min_blur for v in values)
        elif expect == "short_track":
            assert values == [float(shot["end"] - shot["start"])]
    secondary = [r for r in curated.rejects if r.reason == "secondary_face"]
    assert len(secondary) == 1 and 0 < secondary[0].value < 1 / config.dominance


def test_nothing_good_is_lost(corpus: Corpus, curated: CurationResult) -> None:
    good = [s for s in corpus.truth.shots if s["expect"] == "clip"]
    assert len(curated.clips) == len(good)
    for shot, clip in zip(good, curated.clips):
        assert (clip.start, clip.end) == (shot["start"], shot["end"]), shot["name"]
        assert clip.landmarks.shape == (clip.frames, 68, 2) and clip.affines.shape == (clip.frames, 2, 3)
        assert clip.embedding.shape == (128,)
    assert (curated.coverage() > 0).all(), "every frame is in a clip or a reject"


def test_rerun_gives_the_same_result(corpus: Corpus, curated: CurationResult, models: FaceModels) -> None:
    again = curate_video(corpus.path, TEST_CONFIG, models)
    assert again.digest() == curated.digest()
    assert [(c.start, c.end, c.track_id) for c in again.clips] == [
        (c.start, c.end, c.track_id) for c in curated.clips
    ]
    for a, b in zip(again.clips, curated.clips):
        assert np.array_equal(a.affines, b.affines) and np.array_equal(a.embedding, b.embedding)
    assert again.rejects == curated.rejects
    stats = curated.stats
    frames = stats["frames"]
    print(
        f"\nCPU time per frame: {1000 * stats['pass_s'] / frames:.1f} ms in all "
        f"({frames:.0f} frames, {stats['tracks']:.0f} tracks); detector {1000 * stats['detect_s'] / stats['detections']:.1f} "
        f"ms a call ({stats['detections']:.0f} calls), correlation tracking {1000 * stats['track_s'] / frames:.1f} ms a "
        f"frame, landmarks {1000 * stats['landmarks_s'] / stats['landmarks']:.2f} ms a face, descriptor+chips "
        f"{1000 * stats['embed_s'] / stats['landmarks']:.1f} ms a face-frame ({stats['embeddings']:.0f} descriptors), "
        f"blur {1000 * stats['blur_s'] / stats['landmarks']:.2f} ms, cuts {1000 * stats['cuts_s'] / frames:.2f} ms a frame"
    )


def test_identity_change_without_a_detected_cut(tmp_path, models: FaceModels) -> None:
    """With the cut detector off, the descriptor check alone splits hard A → B → C changes exactly."""
    shots = [
        corpus_module.Shot("A", 23, [corpus_module.Layer("A", 110, (0.5, 0.5), pan=(10, 0))], "clip"),
        corpus_module.Shot("B", 19, [corpus_module.Layer("B", 110, (0.52, 0.5), pan=(-10, 0))], "clip"),
        corpus_module.Shot("C", 18, [corpus_module.Layer("C", 110, (0.55, 0.5))], "clip"),
    ]
    path, _ = corpus_module.build_corpus(tmp_path, models, shots, width=320, height=240, name="swap")
    config = CurationConfig(min_frames=10, cuts={"enabled": False})
    result = curate_frames(video_frames(path), config, models)
    assert result.cuts == []
    assert [(c.start, c.end) for c in result.clips] == [(0, 23), (23, 42), (42, 60)]
    assert result.rejects == []
    assert result.stats["identity_splits"] == 2


@pytest.mark.parametrize("tracker", ["landmarks"])
def test_landmark_refit_tracker(
    corpus: Corpus, curated: CurationResult, models: FaceModels, tracker: str
) -> None:
    """The cheaper tracker (re-fit the landmarks in the previous frame's box) gives the same clips."""
    frames = list(video_frames(corpus.path))[: corpus.truth.cuts[2]]
    result = curate_frames(frames, TEST_CONFIG.model_copy(update={"tracker": tracker}), models)
    expected = [(c.start, c.end) for c in curated.clips if c.end <= len(frames)]
    assert [(c.start, c.end) for c in result.clips] == expected
