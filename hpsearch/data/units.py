"""Units of LDOS files and their conversion to the store's states/eV/Angstrom^3.

Codes write the LDOS per energy and per volume in their own units: MALA's ``.out.npy`` in
1/(eV Angstrom^3), Quantum ESPRESSO's ``pp.x`` (plot_num 3) in 1/(Ry Bohr^3), other tools per
eV per Bohr^3. Constants are CODATA 2018. Example::

    name, factor = ldos_unit_factor("1/(Ry Bohr^3)")   # factor 0.4959937...: multiply the file by it
"""

from __future__ import annotations

from hpsearch.errors import ConfigError

__all__ = ["BOHR_ANGSTROM", "LDOS_UNITS", "RYDBERG_EV", "ldos_unit_factor"]

BOHR_ANGSTROM = 0.529177210903
"""One Bohr radius in Angstrom (CODATA 2018)."""

RYDBERG_EV = 13.605693122994
"""One Rydberg in eV (CODATA 2018)."""

#: Canonical unit names -> factor that converts a value in that unit to 1/(eV Angstrom^3).
LDOS_UNITS: dict[str, float] = {
    "1/(eV A^3)": 1.0,
    "1/(eV Bohr^3)": 1.0 / BOHR_ANGSTROM**3,
    "1/(Ry Bohr^3)": 1.0 / (RYDBERG_EV * BOHR_ANGSTROM**3),
}


def _normalise(text: str) -> str:
    key = text.strip().lower().replace(" ", "").replace("*", "").replace("·", "")
    for long_form in ("angstrom", "ang", "å"):
        key = key.replace(long_form, "a")
    return key.replace("bohr3", "bohr^3").replace("a3", "a^3")


_BY_KEY = {_normalise(name): name for name in LDOS_UNITS}


def ldos_unit_factor(unit: str) -> tuple[str, float]:
    """``(canonical name, factor to 1/(eV Angstrom^3))`` of an LDOS unit; ConfigError if unknown.

    Spaces, ``*`` and spellings of Angstrom (A, Ang, Angstrom) do not matter:
    ``"1/(eV*Angstrom^3)"`` is ``"1/(eV A^3)"``.
    """
    name = _BY_KEY.get(_normalise(unit))
    if name is None:
        raise ConfigError(
            f"unknown LDOS unit {unit!r}: use one of {', '.join(repr(u) for u in LDOS_UNITS)} "
            "(MALA .out.npy files are in 1/(eV A^3), Quantum ESPRESSO pp.x writes 1/(Ry Bohr^3))"
        )
    return name, LDOS_UNITS[name]
