"""Near-duplicate search: exact against brute force, and the fingerprints behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from planted_data import brightened_copy, make_image, make_wav

from framework.data.dedup import band_plan, hamming_pairs, near_groups
from framework.data.fingerprints import audio_signature, image_hash, normalise_text, simhash


def _random_hashes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**32, n, dtype=np.uint64) << np.uint64(32) | rng.integers(0, 2**32, n, dtype=np.uint64)


def _plant(hashes: np.ndarray, radius: int, seed: int) -> np.ndarray:
    """Make every 10th hash a copy of the previous one with 1..radius+1 flipped bits."""
    rng = np.random.default_rng(seed)
    out = hashes.copy()
    for i in range(1, out.size, 10):
        flips = rng.choice(64, size=rng.integers(1, radius + 2), replace=False)
        out[i] = out[i - 1] ^ np.uint64(sum(1 << int(b) for b in flips))
    return np.unique(out)


@pytest.mark.parametrize("radius", [1, 3, 4, 6, 9])
def test_hamming_pairs_matches_brute_force(radius: int) -> None:
    hashes = _plant(_random_hashes(1500, radius), radius, seed=radius)
    found = {tuple(p) for p in hamming_pairs(hashes, radius).tolist()}
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    i, j = np.triu_indices(hashes.size, 1)
    expected = set(zip(i[dist[i, j] <= radius].tolist(), j[dist[i, j] <= radius].tolist()))
    assert found == expected and len(expected) >= 50


def test_band_plan_widens_bands_with_n() -> None:
    small, large = band_plan(1_000, 4), band_plan(1_000_000, 4)
    assert 64 // large[0] > 64 // small[0]  # wider bands, so fewer random candidates per item
    assert band_plan(1000, 4)[1] == 4 // band_plan(1000, 4)[0]


def test_near_groups_collapse_identical_hashes() -> None:
    hashes = [5, 5, 5, 5 ^ 0b11, 2**63]
    groups = near_groups(hashes, radius=2)
    assert len(set(groups[:4].tolist())) == 1 and groups[4] != groups[0]


def test_image_hash_survives_brightness_and_resize(tmp_path: Path) -> None:
    original = make_image(tmp_path / "a.png", 3)
    near, _ = image_hash(brightened_copy(original, tmp_path / "b.png"))
    base, meta = image_hash(original)
    other, _ = image_hash(make_image(tmp_path / "c.png", 4))
    assert bin(base ^ near).count("1") <= 4 < bin(base ^ other).count("1")
    assert meta["mode"] == "RGB" and meta["format"] == "PNG"


def test_image_hash_is_the_phash_imagehash_prints(tmp_path: Path) -> None:
    import imagehash
    from PIL import Image

    for seed in range(6):
        path = make_image(tmp_path / f"{seed}.png", seed)
        with Image.open(path) as img:
            assert image_hash(path)[0] == int(str(imagehash.phash(img)), 16)  # same 64 bits, same order


def test_audio_signature_survives_gain_and_resampling(tmp_path: Path) -> None:
    base, meta = audio_signature(make_wav(tmp_path / "a.wav", 300))
    quieter, _ = audio_signature(make_wav(tmp_path / "b.wav", 300, gain=0.2))
    resampled, _ = audio_signature(make_wav(tmp_path / "c.wav", 300, sr=22050))
    other, _ = audio_signature(make_wav(tmp_path / "d.wav", 1200))
    assert bin(base ^ quieter).count("1") <= 2
    assert bin(base ^ resampled).count("1") <= 4
    assert bin(base ^ other).count("1") > 8
    assert meta == {"samplerate": 16000, "channels": 1}


def test_text_normalisation_and_simhash() -> None:
    assert normalise_text("  Hello,   WORLD!! ") == "hello world"
    a = simhash("the quick brown fox jumps over the lazy dog near the river bank today")
    b = simhash("The quick brown fox jumps over the lazy dog near the river bank, today!")
    c = simhash("completely different sentence about audio data and annotation guidelines here")
    assert a == b and bin(a ^ c).count("1") > 10


def test_rows_without_media_or_text_are_compared_by_their_fields(tmp_path: Path) -> None:
    from framework.data.checks import CheckContext
    from framework.data.gates.cleanliness import CleanlinessGate
    from framework.data.records import DataBundle, Record

    def row(rid: str, split: str, x: float, label: str) -> Record:
        return Record(id=rid, split=split, source=f"t.csv:{rid}", label=label, fields={"id": rid, "x": x, "label": label})

    bundle = DataBundle(root=tmp_path, splits={
        "train": [row("a", "train", 1.0, "p"), row("b", "train", 1.0, "p"), row("c", "train", 2.0, "q")],
        "test": [row("d", "test", 2.0, "q"), row("e", "test", 3.0, "q")],
    })
    ctx = CheckContext(modality="tabular", settings={}, slice_fields=(), out_dir=tmp_path)
    result = CleanlinessGate().run(bundle, ctx)
    assert not result.passed
    assert result.measured["leaked"] == 1  # row d repeats train row c's features
    assert result.measured["exact_duplicates"] >= 1  # rows a and b


def test_jpeg_phash_from_the_reduced_decode_still_finds_copies_and_truncation() -> None:
    import io

    import numpy as np
    from PIL import Image

    from framework.data.fingerprints import image_hash

    rng = np.random.default_rng(0)
    grid = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((800, 600), Image.BICUBIC)
    original, smaller = io.BytesIO(), io.BytesIO()
    grid.save(original, "JPEG", quality=90)
    grid.resize((640, 480), Image.BILINEAR).save(smaller, "JPEG", quality=75)
    (a, meta), (b, _) = image_hash(io.BytesIO(original.getvalue())), image_hash(io.BytesIO(smaller.getvalue()))
    assert meta == {"mode": "RGB", "format": "JPEG", "size": [800, 600]}  # the file's, not the reduced decode's
    assert bin(a ^ b).count("1") <= 4  # a near copy at the audit's default radius
    with pytest.raises(OSError, match="truncated"):
        image_hash(io.BytesIO(original.getvalue()[: len(original.getvalue()) // 2]))
