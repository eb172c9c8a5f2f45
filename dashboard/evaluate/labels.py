"""Match a dataset's class names to a model's labels: ImageNet index, WordNet id or label name."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

IMAGENET_CLASSES = 1000
_WNID = re.compile(r"^n\d{8}$")
_UNIQUE_SUFFIX = re.compile(r"^(?P<name>.*) \((?P<index>\d+)\)$")  # classifier.unique_labels


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids in class-index order (shipped file; see its header)."""
    text = resources.files(__package__).joinpath("imagenet_synsets.txt").read_text()
    wnids = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    assert len(wnids) == IMAGENET_CLASSES, "imagenet_synsets.txt must hold 1000 ids"
    return wnids


def normalise(name: str) -> str:
    """Case-insensitive, '_' and '-' read as spaces, runs of spaces collapsed."""
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def base_label(label: str, index: int) -> str:
    """The model's own label: "crane (134)" (told apart by Classifier) -> "crane"."""
    m = _UNIQUE_SUFFIX.match(label)
    return m.group("name") if m and int(m.group("index")) == index else label


@dataclass(frozen=True)
class Matching:
    """Each class name of a dataset mapped to a model's class index, or listed as unmatched."""

    index_of: dict[str, int]  # class name -> model class index
    how: dict[str, str]  # class name -> "index" | "wordnet id" | "label"
    unmatched: tuple[str, ...]


def match_classes(classes: Sequence[str], labels: Sequence[str]) -> Matching:
    """Map dataset class names onto a model's labels.

    A class name matches, in this order: an ImageNet index ("207", when the model has that many
    classes); a WordNet id ("n02099601", when the model has the 1000 ImageNet-1k classes, whose
    order is the standard one); or a label name, case-insensitive, equal to the whole label or to
    any of its comma-separated synonyms ("golden retriever", "tinca tinca"). A synonym shared by
    several labels matches the first. Names that match nothing are returned in ``unmatched``.
    """
    by_name: dict[str, int] = {}
    for i, label in enumerate(labels):
        own = base_label(label, i)
        for name in (own, *own.split(",")):
            by_name.setdefault(normalise(name), i)
    wnids = {w: i for i, w in enumerate(imagenet_wnids())} if len(labels) == IMAGENET_CLASSES else {}
    index_of: dict[str, int] = {}
    how: dict[str, str] = {}
    unmatched = []
    for cls in classes:
        text = cls.strip()
        if text.isdigit() and int(text) < len(labels):
            index_of[cls], how[cls] = int(text), "index"
        elif _WNID.match(text.lower()) and text.lower() in wnids:
            index_of[cls], how[cls] = wnids[text.lower()], "wordnet id"
        elif normalise(text) in by_name:
            index_of[cls], how[cls] = by_name[normalise(text)], "label"
        else:
            unmatched.append(cls)
    return Matching(index_of, how, tuple(unmatched))
