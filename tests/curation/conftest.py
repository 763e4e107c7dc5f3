"""Shared real-media fixtures: dlib's networks, the rendered corpus (built once per session into a temporary
folder) and its curation."""

from __future__ import annotations

import pytest

from dualforce_core.curation import CurationResult, FaceModels, curate_video
from dualforce_core.curation import corpus as corpus_module
from tests.curation.curation_fixtures import TEST_CONFIG, Corpus


@pytest.fixture(scope="session")
def models() -> FaceModels:
    return FaceModels("hog", upsample=1)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, models: FaceModels) -> Corpus:
    corpus_module.check_media()
    path, truth = corpus_module.build_corpus(tmp_path_factory.mktemp("curation_corpus"), models)
    embeddings = {}
    for name in corpus_module.PHOTOS:
        image = corpus_module.load_image(name)
        embeddings[name] = models.embed(image, corpus_module.photo_landmarks(models, image))
    return Corpus(path, truth, embeddings)


@pytest.fixture(scope="session")
def curated(corpus: Corpus, models: FaceModels) -> CurationResult:
    return curate_video(corpus.path, TEST_CONFIG, models)
