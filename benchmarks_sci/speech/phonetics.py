"""The 57 consonant-vowel syllables of Livezey, Bouchard & Chang (2019) and their features.

19 English consonants x 3 vowels (/a/, /i/, /u/), the syllable set of the vSMC speech
studies of the Chang lab (Bouchard et al. 2013; Livezey et al. 2019). Class ``k`` is
consonant ``k // 3`` with vowel ``k % 3``, in the orders of ``CONSONANTS`` and ``VOWELS``;
its name is the two spellings joined (``"ba"``, ``"shu"``, ``"thi"``). Real-data labels
must use this numbering.

Every consonant has a place of articulation, a manner and voicing, and every place a
major articulator (labial, coronal, dorsal, laryngeal): the articulatory structure that
the hierarchical clustering of a decoder's confusion matrix recovers. ``feature_table``
gives the binary syllable x feature matrix a report needs to annotate that clustering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Consonant:
    name: str  # ASCII spelling, used in class names
    ipa: str
    place: str  # one of PLACES
    manner: str  # one of MANNERS
    voiced: bool


@dataclass(frozen=True)
class Vowel:
    name: str
    ipa: str
    height: str  # "high" or "low"
    backness: str  # "front" or "back"
    rounded: bool


PLACES: tuple[str, ...] = (
    "bilabial",
    "labiodental",
    "labiovelar",
    "dental",
    "alveolar",
    "postalveolar",
    "palatal",
    "velar",
    "glottal",
)
MAJOR_ARTICULATORS: tuple[str, ...] = ("labial", "coronal", "dorsal", "laryngeal")
#: The articulator that forms each place's constriction (/w/ counts as labial: its lip
#: rounding dominates the vSMC pattern).
MAJOR_OF_PLACE: dict[str, str] = {
    "bilabial": "labial",
    "labiodental": "labial",
    "labiovelar": "labial",
    "dental": "coronal",
    "alveolar": "coronal",
    "postalveolar": "coronal",
    "palatal": "dorsal",
    "velar": "dorsal",
    "glottal": "laryngeal",
}
MANNERS: tuple[str, ...] = ("stop", "fricative", "nasal", "approximant", "lateral")

CONSONANTS: tuple[Consonant, ...] = (
    Consonant("b", "b", "bilabial", "stop", True),
    Consonant("d", "d", "alveolar", "stop", True),
    Consonant("f", "f", "labiodental", "fricative", False),
    Consonant("g", "\u0261", "velar", "stop", True),
    Consonant("h", "h", "glottal", "fricative", False),
    Consonant("k", "k", "velar", "stop", False),
    Consonant("l", "l", "alveolar", "lateral", True),
    Consonant("m", "m", "bilabial", "nasal", True),
    Consonant("n", "n", "alveolar", "nasal", True),
    Consonant("p", "p", "bilabial", "stop", False),
    Consonant("r", "ɹ", "postalveolar", "approximant", True),
    Consonant("s", "s", "alveolar", "fricative", False),
    Consonant("sh", "ʃ", "postalveolar", "fricative", False),
    Consonant("t", "t", "alveolar", "stop", False),
    Consonant("th", "θ", "dental", "fricative", False),
    Consonant("v", "v", "labiodental", "fricative", True),
    Consonant("w", "w", "labiovelar", "approximant", True),
    Consonant("y", "j", "palatal", "approximant", True),
    Consonant("z", "z", "alveolar", "fricative", True),
)
VOWELS: tuple[Vowel, ...] = (
    Vowel("a", "\u0251", "low", "back", False),
    Vowel("i", "i", "high", "front", False),
    Vowel("u", "u", "high", "back", True),
)

N_CONSONANTS = len(CONSONANTS)
N_VOWELS = len(VOWELS)
N_CLASSES = N_CONSONANTS * N_VOWELS
CV_NAMES: tuple[str, ...] = tuple(c.name + v.name for c in CONSONANTS for v in VOWELS)
#: Consonant index [57] and vowel index [57] of every class.
CONSONANT_OF_CLASS: np.ndarray = np.repeat(np.arange(N_CONSONANTS), N_VOWELS)
VOWEL_OF_CLASS: np.ndarray = np.tile(np.arange(N_VOWELS), N_CONSONANTS)


def class_index(consonant: str, vowel: str) -> int:
    """Label of a syllable given its spellings, e.g. ``class_index("sh", "u")``."""
    names = [c.name for c in CONSONANTS]
    vowels = [v.name for v in VOWELS]
    if consonant not in names or vowel not in vowels:
        raise ValueError(f"unknown syllable {consonant + vowel!r}; known: {', '.join(CV_NAMES)}")
    return names.index(consonant) * N_VOWELS + vowels.index(vowel)


def consonant_groups(feature: str) -> np.ndarray:
    """Group index [19] of each consonant by ``feature``: "major" (articulator), "place",
    "manner" or "voicing" (1 = voiced), numbered in the order of the feature's tuple."""
    if feature == "major":
        return np.array([MAJOR_ARTICULATORS.index(MAJOR_OF_PLACE[c.place]) for c in CONSONANTS])
    if feature == "place":
        return np.array([PLACES.index(c.place) for c in CONSONANTS])
    if feature == "manner":
        return np.array([MANNERS.index(c.manner) for c in CONSONANTS])
    if feature == "voicing":
        return np.array([int(c.voiced) for c in CONSONANTS])
    raise ValueError(f"unknown feature {feature!r}; known: major, place, manner, voicing")


def feature_table() -> tuple[tuple[str, ...], np.ndarray]:
    """Feature names and the binary matrix int8 [57, n_features] of every syllable:
    major articulator, place, manner, voicing of the consonant, then vowel height,
    backness and rounding (one column per value)."""
    names = (
        *(f"major:{m}" for m in MAJOR_ARTICULATORS),
        *(f"place:{p}" for p in PLACES),
        *(f"manner:{m}" for m in MANNERS),
        "voiced",
        "vowel:high",
        "vowel:back",
        "vowel:rounded",
    )
    rows = []
    for c in CONSONANTS:
        for v in VOWELS:
            on = {
                f"major:{MAJOR_OF_PLACE[c.place]}",
                f"place:{c.place}",
                f"manner:{c.manner}",
                *(["voiced"] if c.voiced else []),
                *(["vowel:high"] if v.height == "high" else []),
                *(["vowel:back"] if v.backness == "back" else []),
                *(["vowel:rounded"] if v.rounded else []),
            }
            rows.append([name in on for name in names])
    return names, np.array(rows, dtype=np.int8)
