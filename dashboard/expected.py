"""The ImageNet-1k class each example photo shows, where ImageNet has a true class for it.

Matched by the sha256 of the file's bytes, so a renamed upload of the same photo still matches
and any other image (even one pixel changed, or the same photo re-encoded) never does. Only
ImageNet-1k label spaces get a verdict: other models' indices mean other classes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExpectedClass:
    """What a photo shows, as ImageNet-1k indices accepted as right (a tabby is also a "tiger cat")."""

    name: str
    indices: frozenset[int]
    example: str  # the example's file name


def _expected(name: str, example: str, *indices: int) -> ExpectedClass:
    return ExpectedClass(name, frozenset(indices), example)


# sha256 of the file -> expected class. Indices are ImageNet-1k's (torchvision's categories and
# the Hub configs' id2label share them). astronaut.jpg (a person in a spacesuit) and rocket.jpg
# (a launch vehicle, which ImageNet's "missile" and "projectile" are not) have no true class.
EXAMPLES: dict[str, ExpectedClass] = {
    "4c45ece00075f152cb2e6cfd5f1dfd7dc8e83042264685b4f470026240eff3ef": _expected("lion", "lion.jpg", 291),
    "29b0090f5ec471dad0264abc20ecc3c80a0133a63a03d11df920e39a093fe6c8": _expected("cheetah", "cheetah.jpg", 293),
    "4d0169c5aee1e7aa69698d7465766522f455c85a521f484bb29876453e8b3b1a": _expected(
        "tabby cat (tabby or tiger cat)", "cat.jpg", 281, 282),
    "52daa39473f2bb8817f03f5ccafa7bb874cf2b200ef74dc1cdf513fd1c06d594": _expected("espresso", "coffee.jpg", 967),
    "a283c1acefceeb0956e9a166a8f7b3a3a49cd01910c17fc6950d471a9a350bdd": _expected(
        "military uniform", "grace_hopper.jpg", 652),
}
IMAGENET_CLASSES = 1000


def expected_for_digest(digest: str) -> ExpectedClass | None:
    """The expected class of the example whose bytes hash to ``digest`` (sha256 hex), or None."""
    return EXAMPLES.get(digest)


@dataclass(frozen=True)
class Verdict:
    right: bool | None  # None: no verdict (the model's classes are not ImageNet-1k's)
    text: str

    @property
    def mark(self) -> str:
        return "" if self.right is None else ("✓" if self.right else "✗")


def verdict(expected: ExpectedClass | None, top1_index: int, top1_label: str, num_classes: int) -> Verdict | None:
    """Right or wrong for the top-1 answer, or None when the image has no expected class."""
    if expected is None:
        return None
    if num_classes != IMAGENET_CLASSES:
        return Verdict(None, f"expected: {expected.name} (no verdict: this model's classes are not ImageNet-1k's)")
    if top1_index in expected.indices:
        return Verdict(True, f"✓ right: expected {expected.name}, top-1 is {top1_label}")
    return Verdict(False, f"✗ wrong: expected {expected.name}, top-1 is {top1_label}")
