"""Augmentation pipelines from config: what they build, and the errors a typo gives."""

from __future__ import annotations

import numpy as np
import pytest

from framework.media.augment import AugmentationError, apply, build_pipeline


def test_builds_in_order_skips_nulls_and_fills_the_output_size() -> None:
    spec = {"RandomResizedCrop": {"scale": [0.5, 1.0]}, "HorizontalFlip": None, "Affine": {"rotate": [-5, 5]}}
    pipeline = build_pipeline(spec, (24, 20), "modality.augment")
    assert [type(t).__name__ for t in pipeline.transforms] == ["RandomResizedCrop", "Affine"]
    out = apply(pipeline, np.zeros((40, 40, 3), np.uint8))
    assert out.shape == (24, 20, 3)


def test_default_probability_for_conditions() -> None:
    pipeline = build_pipeline({"GaussNoise": {}, "HorizontalFlip": {"p": 0.25}}, (8, 8), "x", default_p=1.0)
    assert [t.p for t in pipeline.transforms] == [1.0, 0.25]


def test_same_seed_same_augmentation() -> None:
    pipeline = build_pipeline({"Affine": {"rotate": [-30, 30], "p": 1.0}}, (16, 16), "modality.augment")
    image = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    pipeline.set_random_seed(7)
    first = apply(pipeline, image)
    pipeline.set_random_seed(7)
    np.testing.assert_array_equal(first, apply(pipeline, image))


def test_unknown_transform_names_it_and_the_valid_ones() -> None:
    with pytest.raises(AugmentationError) as err:
        build_pipeline({"RandomResizeCrop": {}}, (16, 16), "modality.augment")
    msg = str(err.value)
    assert "modality.augment: unknown transform 'RandomResizeCrop'" in msg
    assert "Did you mean 'RandomResizedCrop'?" in msg
    assert "Valid transforms" in msg and "GaussianBlur" in msg


def test_unknown_argument_names_the_transform_key_and_valid_arguments() -> None:
    with pytest.raises(AugmentationError) as err:
        build_pipeline({"GaussianBlur": {"sigma": 1.0}}, (16, 16), "modality.augment")
    msg = str(err.value)
    assert msg.startswith("modality.augment.GaussianBlur: unknown argument 'sigma'.")
    assert "Valid arguments of GaussianBlur: blur_limit, sigma_limit" in msg


def test_bad_value_names_the_transform() -> None:
    with pytest.raises(AugmentationError, match=r"modality.robustness.jpeg.ImageCompression: invalid arguments"):
        build_pipeline({"ImageCompression": {"quality_range": "low"}}, (16, 16), "modality.robustness.jpeg")


def test_arguments_must_be_a_mapping() -> None:
    with pytest.raises(AugmentationError, match="arguments must be a mapping"):
        build_pipeline({"HorizontalFlip": 0.5}, (16, 16), "modality.augment")


def test_condition_pipelines_apply_every_transform_reproducibly_and_skip_nulls() -> None:
    from framework.media.augment import condition_pipelines

    image = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    conditions = {"noise": {"GaussNoise": {"std_range": [0.2, 0.2]}}, "off": None}
    first = condition_pipelines(conditions, (16, 16), "modality.robustness", seed=3)
    again = condition_pipelines(conditions, (16, 16), "modality.robustness", seed=3)
    assert list(first) == ["noise"]
    noisy = apply(first["noise"], image)
    assert not np.array_equal(noisy, image)  # p defaults to 1: every image is perturbed
    assert np.array_equal(noisy, apply(again["noise"], image))


def test_condition_errors_name_the_condition() -> None:
    from framework.media.augment import condition_pipelines

    with pytest.raises(AugmentationError, match=r"modality\.robustness\.blurry: unknown transform 'GaussBlur'"):
        condition_pipelines({"blurry": {"GaussBlur": {}}}, (16, 16), "modality.robustness")
