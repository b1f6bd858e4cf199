"""Independent verification of golden's codec against docs/numerics.md, Formats and Rounding.

The reference (``reference_fractions.py``) is written from docs/numerics.md with exact
``Fraction`` arithmetic and shares no code with ``golden/codec.py``. Formats up to 16 bits
are checked exhaustively for decode, and encode is checked against a sorted enumeration
of every representable value on: all representable values, every midpoint (tie), each
nudged one float64 ulp either way, the overflow boundary, the underflow region, huge and
special inputs, and seeded random float64s. ``fp30`` uses a direct binade/quantum
reference. ``ml_dtypes`` is a second, external oracle for ``e4m3`` (any bias) and
``e5m2``.

A failure prints the inputs in hex and decoded form.
"""

from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import golden
from golden import FormatError
from reference_fractions import (SPEC_FORMATS, SPEC_INT_FORMATS, Grid, Spec,
                                 decode_int_ref, encode_int_ref, floor_log2, pow2,
                                 round_direct)

pytestmark = pytest.mark.quick

ROUNDINGS = ("rne", "rnu")
OVERFLOWS = ("sat", "nan")
E4M3_BIASES = tuple(range(16))
FP8SEB_BIASES = (-32, -1, 0, 7, 31)

SMALL_CASES = ([("e4m3", b) for b in E4M3_BIASES]
               + [("e5m2", 15), ("fp9", 15), ("dlfloat16", 31)]
               + [("fp8seb", b) for b in FP8SEB_BIASES])


def _case_id(case):
    return f"{case[0]}-b{case[1]}"


@functools.lru_cache(maxsize=None)
def grid_of(name: str, bias: int) -> Grid:
    return Grid(Spec.of(name, bias))


def code_dtype(width: int):
    return np.uint8 if width <= 8 else np.uint16 if width <= 16 else np.uint32


# Failure messages ----------------------------------------------------------------------
def describe(spec: Spec, code: int) -> str:
    kind, s, mag = spec.value(int(code))
    sign = "-" if s else "+"
    if kind != "num":
        return f"{sign}{kind}" if spec.style == "ieee" else kind
    return f"{sign}{float(mag)!r}"


def hexcode(spec: Spec, code: int) -> str:
    return f"0x{int(code):0{(spec.width + 3) // 4}X}"


def encode_failures(spec, xs, got, exp, ctx, limit=12) -> str:
    bad = np.flatnonzero(got != exp)
    lines = [f"{ctx}: {bad.size} of {xs.size} inputs encode wrongly"]
    for i in bad[:limit]:
        x = float(xs.flat[i])
        lines.append(f"  x={x.hex()} ({x!r}): expected {hexcode(spec, exp[i])} "
                     f"[{describe(spec, exp[i])}], got {hexcode(spec, got[i])} "
                     f"[{describe(spec, got[i])}]")
    return "\n".join(lines)


# Reference decode ----------------------------------------------------------------------
def ref_decode_floats(spec: Spec, codes) -> tuple[list, np.ndarray]:
    """Exact values (Fraction, or None for NaN/Inf) and the sign bit of each code."""
    vals, signs = [], []
    for c in codes:
        kind, s, mag = spec.value(int(c))
        vals.append(None if kind != "num" else (-mag if s else mag))
        signs.append(s)
    return vals, np.array(signs, dtype=bool)


def check_decode(spec: Spec, codes: np.ndarray, got: np.ndarray, ctx: str):
    assert got.dtype == np.float64, f"{ctx}: decode gave {got.dtype}, not float64"
    assert got.shape == codes.shape
    vals, signs = ref_decode_floats(spec, codes)
    bad = []
    for c, v, s, g in zip(codes.tolist(), vals, signs.tolist(), got.tolist()):
        if v is None:
            ok = math.isnan(g)
        else:
            ok = (not math.isnan(g) and not math.isinf(g) and Fraction(g) == v
                  and (v != 0 or math.copysign(1.0, g) == (-1.0 if s else 1.0)))
        if not ok:
            exp = "NaN" if v is None else (("-" if s else "+") + repr(float(abs(v))))
            bad.append(f"  code {hexcode(spec, c)}: expected {exp}, got {g!r}")
    assert not bad, f"{ctx}: {len(bad)} codes decode wrongly\n" + "\n".join(bad[:16])


# 0. The reference itself against the numbers of docs/numerics.md------------------------
def test_reference_matches_spec_numbers():
    e4 = Spec.of("e4m3")
    assert e4.bias == 11
    assert e4.max_value == 28
    assert e4.min_positive == pow2(-13)
    assert e4.value(0x08)[2] == pow2(-10)  # min normal
    assert Spec.of("e4m3", 7).max_value == 448  # OCP E4M3FN
    fp9 = Spec.of("fp9")
    assert fp9.max_value == 61440 and fp9.min_positive == pow2(-17)
    e5 = Spec.of("e5m2")
    assert e5.max_value == 57344 and e5.min_positive == pow2(-16)
    dl = Spec.of("dlfloat16")
    assert dl.max_value == pow2(32) * (1 + Fraction(510, 512))
    assert dl.min_positive == pow2(-31) * (1 + Fraction(1, 512))
    assert dl.canonical_nan == 0x7FFF and dl.value(0xFFFF)[0] == "nan"
    assert dl.value(0x8000) == ("num", 0, 0)
    fp30 = Spec.of("fp30")
    assert fp30.canonical_nan == 0x1FFFFFFF
    assert fp30.signed_value(0x1FFFFFFE) == pow2(32) * (2 - pow2(-22))
    assert e4.canonical_nan == 0x7F and e5.canonical_nan == 0x7F
    for b in FP8SEB_BIASES:
        s = Spec.of("fp8seb", b)
        assert s.max_value == pow2(15 - b) * Fraction(15, 8)
        assert s.min_positive == pow2(-2 - b)
        assert all(s.value(c)[0] == "num" for c in range(256))


def test_golden_format_table_matches_spec():
    for name, (E, M, b, style, brange) in SPEC_FORMATS.items():
        f = golden.FLOAT_FORMATS[name]
        assert (f.exp_bits, f.man_bits, f.bias, f.style, tuple(f.bias_range)) == \
            (E, M, b, style, brange), name
    for name, bits in SPEC_INT_FORMATS.items():
        assert golden.INT_FORMATS[name].bits == bits


@pytest.mark.parametrize("case", [("e4m3", 11), ("e4m3", 0), ("e4m3", 15), ("e5m2", 15),
                                  ("fp9", 15), ("dlfloat16", 31), ("fp8seb", -32),
                                  ("fp8seb", 31)], ids=_case_id)
def test_reference_grid_agrees_with_direct_rounding(case):
    """The two references (enumeration, binade/quantum) agree: a check on the checker."""
    spec = Spec.of(*case)
    grid = grid_of(*case)
    mags = encode_magnitudes(spec, grid, seed=1, n_random=500)
    if case[0] == "dlfloat16":
        mags = mags[::8]  # keep the self-check quick
    for r in ROUNDINGS:
        for x in mags.tolist():
            if x == 0 or math.isinf(x):
                continue
            a = Fraction(x)
            assert grid.round_mag(a, r) == round_direct(spec, a, r), (case, r, x.hex())


# 1. Decode, every code of every format up to 16 bits -----------------------------------
@pytest.mark.parametrize("case", SMALL_CASES, ids=_case_id)
def test_decode_every_code(case):
    name, bias = case
    spec = Spec.of(name, bias)
    codes = np.arange(1 << spec.width).astype(code_dtype(spec.width))
    check_decode(spec, codes, golden.decode(codes, name, bias=bias), f"decode {name} b={bias}")
    if bias == SPEC_FORMATS[name][2]:
        check_decode(spec, codes, golden.decode(codes, name), f"decode {name} default bias")
        check_decode(spec, codes, golden.decode(codes, golden.FLOAT_FORMATS[name]),
                     f"decode {name} format object")


def test_decode_array_bias_broadcasts():
    codes = np.arange(256, dtype=np.uint8)
    for name, biases in (("e4m3", np.arange(16)), ("fp8seb", np.array(FP8SEB_BIASES))):
        got = golden.decode(codes[:, None], name, bias=biases[None, :])
        assert got.shape == (256, biases.size)
        for j, b in enumerate(biases.tolist()):
            check_decode(Spec.of(name, b), codes, got[:, j], f"decode {name} array bias {b}")


# 1. Encode, exhaustive-ish for formats up to 16 bits -----------------------------------
def _exact_float(v: Fraction) -> float:
    f = float(v)
    assert Fraction(f) == v, f"{v} is not a float64"
    return f


def encode_magnitudes(spec: Spec, grid: Grid, seed: int, n_random: int) -> np.ndarray:
    """Non-negative float64 test magnitudes for one format (deduplicated)."""
    vals = grid.values  # finite values then the overflow point
    reps = np.array([_exact_float(v) for v in vals])
    mids = np.array([_exact_float((lo + hi) / 2) for lo, hi in zip(vals, vals[1:])])
    minpos = spec.min_positive
    slot = vals[-1]
    special = [_exact_float(minpos * k) for k in (Fraction(1, 4), Fraction(1, 2),
                                                  Fraction(3, 4))]
    special += [_exact_float(pow2(floor_log2(minpos))),   # dl: 2^-b is not a value
                _exact_float(slot * 2), _exact_float(slot * 3 / 2),
                5e-324, 2.0 ** -1022, 1e-300, 1e300, 2.0 ** 1023,
                float(np.finfo(np.float64).max), math.inf]
    base = np.concatenate([reps, mids, np.array(special)])
    with np.errstate(over="ignore"):
        nudged = np.concatenate([np.nextafter(base, np.inf), np.nextafter(base, 0.0)])
    rng = np.random.default_rng(seed)
    # whole float64 range: random bit patterns
    anyf = rng.integers(0, 0x7FF0000000000000, size=n_random, dtype=np.uint64).view(np.float64)
    # the format's own range, plus a few binades either side
    lo_e, hi_e = floor_log2(minpos) - 3, floor_log2(slot) + 3
    exps = rng.integers(lo_e, hi_e + 1, size=n_random)
    fr = rng.integers(0, 1 << 52, size=n_random, dtype=np.int64).astype(np.float64)
    inrange = np.ldexp(1.0 + fr / 2.0 ** 52, exps)
    out = np.concatenate([base, nudged, anyf, inrange, [0.0]])
    out = np.abs(out[~np.isnan(out)])
    return np.unique(out)


def check_encode_against(spec: Spec, name: str, bias, xs: np.ndarray, round_mag, ctx: str,
                         overflows=OVERFLOWS, pass_bias=True):
    """golden.encode vs the reference for every rounding mode and overflow action."""
    from reference_fractions import encode_ref

    # cache the (expensive) exact rounding per magnitude, shared by all combinations
    cache: dict = {}

    def cached(ax, r):
        key = (ax, r)
        if key not in cache:
            cache[key] = round_mag(Fraction(ax), r)
        return cache[key]

    for r in ROUNDINGS:
        for o in overflows:
            if o == "nan" and spec.style == "finite":
                continue
            exp = np.array([encode_ref(spec, x, cached, r, o) for x in xs.tolist()],
                           dtype=np.int64)
            kwargs = dict(rounding=r, overflow=o)
            if pass_bias:
                kwargs["bias"] = bias
            got = golden.encode(xs, name, **kwargs)
            assert got.dtype == code_dtype(spec.width), \
                f"{ctx} {r}/{o}: dtype {got.dtype}, expected {np.dtype(code_dtype(spec.width))}"
            assert got.shape == xs.shape
            got = got.astype(np.int64)
            assert np.array_equal(got, exp), encode_failures(spec, xs, got, exp,
                                                             f"{ctx} rounding={r} overflow={o}")


@pytest.mark.parametrize("case", SMALL_CASES, ids=_case_id)
def test_encode_against_enumerated_grid(case):
    name, bias = case
    spec = Spec.of(name, bias)
    grid = grid_of(name, bias)
    n_random = 2000 if name == "dlfloat16" else 3000
    mags = encode_magnitudes(spec, grid, seed=1000 + bias + 97 * len(name), n_random=n_random)
    xs = np.concatenate([mags, -mags, [np.nan, -np.nan]])
    check_encode_against(spec, name, bias, xs, grid.round_mag, f"encode {name} b={bias}")


@pytest.mark.parametrize("name", ["e4m3", "fp8seb", "e5m2", "fp9", "dlfloat16"])
def test_encode_default_bias_and_format_object(name):
    bias = SPEC_FORMATS[name][2]
    spec = Spec.of(name, bias)
    grid = grid_of(name, bias)
    mags = encode_magnitudes(spec, grid, seed=7, n_random=200)[::7]
    xs = np.concatenate([mags, -mags])
    check_encode_against(spec, name, bias, xs, grid.round_mag, f"encode {name} default bias",
                         pass_bias=False)
    got = golden.encode(xs, golden.FLOAT_FORMATS[name], bias=bias)
    assert np.array_equal(got, golden.encode(xs, name, bias=bias))


def test_encode_array_bias_broadcasts():
    from reference_fractions import encode_ref

    for name, biases in (("e4m3", np.arange(16)), ("fp8seb", np.array(FP8SEB_BIASES))):
        rng = np.random.default_rng(5)
        xs = np.ldexp(rng.uniform(-2, 2, size=400), rng.integers(-40, 50, size=400))
        got = golden.encode(xs[:, None], name, bias=biases[None, :])
        assert got.shape == (400, biases.size)
        for j, b in enumerate(biases.tolist()):
            spec, grid = Spec.of(name, b), grid_of(name, b)
            exp = np.array([encode_ref(spec, x, lambda a, r: grid.round_mag(Fraction(a), r),
                                       "rne", "sat") for x in xs.tolist()])
            col = got[:, j].astype(np.int64)
            assert np.array_equal(col, exp), encode_failures(spec, xs, col, exp,
                                                             f"encode {name} array bias {b}")


def test_encode_specials_spelled_out():
    """A few results of Rounding and the Project choices, written out by hand."""
    enc = golden.encode
    # exact zeros give +0; nonzero values rounding to zero keep their sign (not in dl)
    assert enc(np.array([0.0, -0.0]), "e4m3").tolist() == [0, 0]
    assert enc(np.array([-2.0 ** -20]), "e4m3").tolist() == [0x80]
    assert enc(np.array([-2.0 ** -40]), "fp9").tolist() == [0x100]
    assert enc(np.array([-2.0 ** -40, -0.0]), "dlfloat16").tolist() == [0, 0]
    # dl: half of min positive ties to 0 under rne, to min positive under rnu
    half = 2.0 ** -32 * (1 + 2.0 ** -9)
    assert enc(np.array([half, -half]), "dlfloat16", rounding="rne").tolist() == [0, 0]
    assert enc(np.array([half, -half]), "dlfloat16", rounding="rnu").tolist() == [1, 0x8001]
    # 2^-31 (the value e=0, m=0 would have) is not representable: goes to min positive
    assert enc(np.array([2.0 ** -31]), "dlfloat16").tolist() == [1]
    # NaN input: canonical NaN; fp8seb (no NaN): +max
    assert enc(np.array([np.nan]), "e4m3").tolist() == [0x7F]
    assert enc(np.array([np.nan]), "e5m2").tolist() == [0x7F]
    assert enc(np.array([np.nan]), "dlfloat16").tolist() == [0x7FFF]
    assert enc(np.array([np.nan]), "fp30").tolist() == [0x1FFFFFFF]
    assert enc(np.array([np.nan]), "fp8seb", bias=3).tolist() == [0x7F]
    # inf input takes the overflow action
    infs = np.array([np.inf, -np.inf])
    assert enc(infs, "e4m3", overflow="sat").tolist() == [0x7E, 0xFE]
    assert enc(infs, "e4m3", overflow="nan").tolist() == [0x7F, 0x7F]
    assert enc(infs, "e5m2", overflow="nan").tolist() == [0x7C, 0xFC]
    assert enc(infs, "e5m2", overflow="sat").tolist() == [0x7B, 0xFB]
    assert enc(infs, "fp9", overflow="nan").tolist() == [0xF8, 0x1F8]
    assert enc(infs, "dlfloat16", overflow="nan").tolist() == [0x7FFF, 0x7FFF]
    assert enc(infs, "dlfloat16", overflow="sat").tolist() == [0x7FFE, 0xFFFE]
    assert enc(infs, "fp30", overflow="sat").tolist() == [0x1FFFFFFE, 0x3FFFFFFE]
    assert enc(infs, "fp8seb", bias=-32).tolist() == [0x7F, 0xFF]
    # e4m3 b=11: max 28, NaN slot 30, tie 29 -> 28 (max has the even mantissa)
    assert enc(np.array([29.0, -29.0]), "e4m3", overflow="nan").tolist() == [0x7E, 0xFE]
    assert enc(np.array([29.0, -29.0]), "e4m3", overflow="nan",
               rounding="rnu").tolist() == [0x7F, 0x7F]
    # e5m2: tie between max 57344 and the inf slot 65536 overflows under rne
    assert enc(np.array([61440.0, -61440.0]), "e5m2", overflow="nan").tolist() == [0x7C, 0xFC]
    # fp8seb b=0: max 2^15*1.875, next grid point 2^16; tie overflows -> saturates
    assert enc(np.array([2.0 ** 15 * 1.9375]), "fp8seb", bias=0).tolist() == [0x7F]


def test_encode_errors():
    x = np.array([1.0])
    with pytest.raises(FormatError):
        golden.encode(x, "fp8seb", bias=0, overflow="nan")
    with pytest.raises(FormatError):
        golden.encode(x, "fp8seb", overflow="nan")
    for name, bad in (("e4m3", -1), ("e4m3", 16), ("fp8seb", -33), ("fp8seb", 32),
                      ("e5m2", 14), ("dlfloat16", 30)):
        with pytest.raises(FormatError):
            golden.encode(x, name, bias=bad)
        with pytest.raises(FormatError):
            golden.decode(np.array([1], dtype=np.uint8), name, bias=bad)
    with pytest.raises(FormatError):
        golden.encode(x, "e4m3", bias=np.array([3, 16]))
    with pytest.raises(FormatError):
        golden.decode(np.array([1], dtype=np.uint8), "fp8seb", bias=np.array([0, -33]))
    with pytest.raises(FormatError):
        golden.encode(x, "e4m3", rounding="rtz")
    with pytest.raises(FormatError):
        golden.encode(x, "e4m3", overflow="wrap")
    with pytest.raises(FormatError):
        golden.encode(x, "e3m4")


# 2. fp30 -------------------------------------------------------------------------------
FP30 = Spec.of("fp30")


def fp30_special_codes() -> np.ndarray:
    codes = {0, 1, 2, 0x7FFFFF, 0x800000, 0x1FFFFFFE, 0x1FFFFFFF, 0x1FFFFFFD, 0x1F800000}
    for e in range(64):
        for m in (0, 1, 0x400000, 0x7FFFFE, 0x7FFFFF):
            codes.add((e << 23) | m)
    codes |= {c | (1 << 29) for c in codes}
    return np.array(sorted(codes), dtype=np.uint32)


def test_fp30_decode():
    rng = np.random.default_rng(30)
    codes = np.concatenate([fp30_special_codes(),
                            rng.integers(0, 1 << 30, size=20000).astype(np.uint32)])
    check_decode(FP30, codes, golden.decode(codes, "fp30"), "decode fp30")


def fp30_inputs(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = 4000
    # ties: exact midpoints between adjacent finite fp30 values, nudged either way
    c = rng.integers(0, 0x1FFFFFFE, size=n)
    c = np.concatenate([c, [0, 1, 0x7FFFFF, 0x800000, 0x1FFFFFFD, 0x1FFFFFFE]])
    mids = []
    for code in c.tolist():
        lo = FP30.signed_value(code)
        hi = (FP30.signed_value(code + 1) if code + 1 != FP30.canonical_nan
              else FP30.overflow_point()[0])
        mids.append(float((lo + hi) / 2))
        assert Fraction(mids[-1]) == (lo + hi) / 2
    mids = np.array(mids)
    reps = np.array([float(FP30.signed_value(int(k))) for k in c.tolist()])
    maxv, minpos = FP30.max_value, FP30.min_positive
    slot = FP30.overflow_point()[0]
    special = np.array([float(maxv), float((maxv + slot) / 2), float(slot), float(2 * slot),
                        float(minpos), float(minpos / 2), float(minpos / 4),
                        float(3 * minpos / 4), 2.0 ** -31, 2.0 ** -31 * (1 + 2.0 ** -24),
                        2.0 ** -32, 5e-324, 1e-300, 1e300, 2.0 ** 33, 2.0 ** 32])
    base = np.concatenate([mids, reps, special])
    nudged = np.concatenate([np.nextafter(base, np.inf), np.nextafter(base, 0.0)])
    anyf = rng.integers(0, 0x7FF0000000000000, size=3000, dtype=np.uint64).view(np.float64)
    exps = rng.integers(-36, 36, size=6000)
    fr = rng.integers(0, 1 << 52, size=6000, dtype=np.int64).astype(np.float64)
    inrange = np.ldexp(1.0 + fr / 2.0 ** 52, exps)
    mags = np.unique(np.abs(np.concatenate([base, nudged, anyf, inrange, [0.0, np.inf]])))
    return np.concatenate([mags, -mags, [np.nan]])


def test_fp30_encode():
    xs = fp30_inputs(seed=31)
    check_encode_against(FP30, "fp30", 31, xs, lambda a, r: round_direct(FP30, a, r),
                         "encode fp30")


# 3. ml_dtypes as an external oracle ------------------------------------------------------
def _nan_equal_codes(got, exp, is_nan):
    return (got == exp) | (is_nan(got) & is_nan(exp))


def e4m3_nan(c):
    return (c & 0x7F) == 0x7F


def e5m2_nan(c):
    return ((c & 0x7C) == 0x7C) & ((c & 0x03) != 0)


@pytest.mark.parametrize("bias", E4M3_BIASES)
def test_e4m3_decode_matches_ml_dtypes(bias):
    codes = np.arange(256, dtype=np.uint8)
    ref = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float64) * 2.0 ** (7 - bias)
    got = golden.decode(codes, "e4m3", bias=bias)
    same = (got == ref) & (np.signbit(got) == np.signbit(ref)) | (np.isnan(got) & np.isnan(ref))
    bad = np.flatnonzero(~same)
    assert bad.size == 0, "\n".join(f"code 0x{c:02X}: ml_dtypes {ref[c]!r}, got {got[c]!r}"
                                    for c in bad[:16])


def test_e5m2_decode_matches_ml_dtypes():
    codes = np.arange(256, dtype=np.uint8)
    ref = codes.view(ml_dtypes.float8_e5m2).astype(np.float64)
    ref[np.isinf(ref)] = np.nan  # infinities decode to NaN by the API
    got = golden.decode(codes, "e5m2")
    same = (got == ref) & (np.signbit(got) == np.signbit(ref)) | (np.isnan(got) & np.isnan(ref))
    assert same.all(), [hex(c) for c in np.flatnonzero(~same)[:16]]


def ml_inputs(values_f8: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """float32-representable inputs: every value, every midpoint, float32-ulp nudges,
    overflow region, randoms. (ml_dtypes converts float64 through float32, which would
    double-round a value one float64 ulp off a tie, so nudges are float32 ulps.)"""
    v = np.unique(np.abs(values_f8[np.isfinite(values_f8)])) * scale
    mids = (v[:-1] + v[1:]) / 2
    top = v[-1]
    extra = np.array([top * 1.0625, top * 1.125, top * 1.25, top * 2, top * 64, v[1] / 2,
                      v[1] / 4, v[1] * 0.75])
    base = np.concatenate([v, mids, extra]).astype(np.float32)
    nudged = np.concatenate([np.nextafter(base, np.float32(np.inf)),
                             np.nextafter(base, np.float32(0))])
    rng = np.random.default_rng(seed)
    lo, hi = math.log2(v[1]) - 3, math.log2(top) + 3
    rand = (2.0 ** rng.uniform(lo, hi, size=3000)).astype(np.float32)
    mags = np.unique(np.concatenate([base, nudged, rand]).astype(np.float64))
    mags = mags[mags != 0]  # exact zero: golden gives +0 where ml_dtypes keeps -0
    return np.concatenate([mags, -mags])


@pytest.mark.parametrize("bias", E4M3_BIASES)
def test_e4m3_encode_matches_ml_dtypes(bias):
    allv = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    xs = ml_inputs(allv, 2.0 ** (7 - bias), seed=400 + bias)
    exp = (xs * 2.0 ** (bias - 7)).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    exp = exp.astype(np.int64)
    got = golden.encode(xs, "e4m3", bias=bias, overflow="nan").astype(np.int64)
    ok = _nan_equal_codes(got, exp, e4m3_nan)
    spec = Spec.of("e4m3", bias)
    assert ok.all(), encode_failures(spec, xs[~ok], got[~ok], exp[~ok],
                                     f"e4m3 b={bias} vs ml_dtypes")


def test_e5m2_encode_matches_ml_dtypes():
    allv = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e5m2).astype(np.float64)
    xs = ml_inputs(allv, 1.0, seed=500)
    exp = xs.astype(ml_dtypes.float8_e5m2).view(np.uint8).astype(np.int64)
    got = golden.encode(xs, "e5m2", overflow="nan").astype(np.int64)
    ok = _nan_equal_codes(got, exp, e5m2_nan)
    assert ok.all(), encode_failures(Spec.of("e5m2"), xs[~ok], got[~ok], exp[~ok],
                                     "e5m2 vs ml_dtypes")


# 4. convert ----------------------------------------------------------------------------
@pytest.mark.parametrize("src,bias", [("e4m3", b) for b in E4M3_BIASES] + [("e5m2", 15)])
def test_convert_lossless(src, bias):
    a = np.arange(256, dtype=np.uint8)
    if src == "e4m3":
        y = golden.convert(a, "e4m3", bias=bias)
    else:
        y = golden.convert(a, "e5m2")
    assert y.dtype == np.uint16 and y.shape == a.shape
    s_spec, fp9 = Spec.of(src, bias), Spec.of("fp9")
    bad = []
    for c, out in zip(a.tolist(), y.tolist()):
        kin, sin, vin = s_spec.value(c)
        kout, sout, vout = fp9.value(out)
        if src == "e5m2":
            expect_code = c << 1
        elif kin == "nan":
            expect_code = ((c >> 7) << 8) | 0xFF  # S.1111.111 -> S.11111.111
        else:
            expect_code = None
        ok = (out >> 8) == (c >> 7) and out < 0x200 and (kin, sin, vin) == (kout, sout, vout)
        if expect_code is not None:
            ok = ok and out == expect_code
        if not ok:
            bad.append(f"  {src} 0x{c:02X} [{describe(s_spec, c)}] -> fp9 0x{out:03X} "
                       f"[{describe(fp9, out)}]"
                       + (f", expected 0x{expect_code:03X}" if expect_code is not None else ""))
    assert not bad, f"convert {src} b={bias}:\n" + "\n".join(bad[:16])
    # and through golden's own decoders
    d_in = golden.decode(a, src, bias=bias)
    d_out = golden.decode(y, "fp9")
    same = ((d_in == d_out) & (np.signbit(d_in) == np.signbit(d_out))
            | (np.isnan(d_in) & np.isnan(d_out)))
    assert same.all()


def test_convert_default_bias():
    a = np.arange(256, dtype=np.uint8)
    assert np.array_equal(golden.convert(a), golden.convert(a, "e4m3", bias=11))


# 5. int4 / int2 ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["int4", "int2"])
def test_int_decode_and_roundtrip(name):
    bits = SPEC_INT_FORMATS[name]
    codes = np.arange(1 << bits, dtype=np.uint8)
    got = golden.decode(codes, name)
    assert got.tolist() == [float(decode_int_ref(bits, c)) for c in codes.tolist()]
    vals = np.arange(-(1 << (bits - 1)), 1 << (bits - 1)).astype(np.float64)
    assert np.array_equal(golden.decode(golden.encode(vals, name), name), vals)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("name", ["int4", "int2"])
def test_int_encode(name, rounding):
    bits = SPEC_INT_FORMATS[name]
    ints = np.arange(-20, 21, dtype=np.float64)
    base = np.concatenate([ints, ints + 0.5, ints + 0.25, ints + 0.75, [1e300, 2.0 ** 40]])
    rng = np.random.default_rng(bits)
    xs = np.concatenate([base, np.nextafter(base, np.inf), np.nextafter(base, -np.inf),
                         rng.uniform(-12, 12, size=2000)])
    xs = np.unique(np.concatenate([xs, -xs, [0.0, -0.0]]))
    exp = np.array([encode_int_ref(bits, x, rounding) for x in xs.tolist()])
    got = np.asarray(golden.encode(xs, name, rounding=rounding)).astype(np.int64)
    bad = np.flatnonzero(got != exp)
    assert bad.size == 0, f"{name} {rounding}:\n" + "\n".join(
        f"  x={xs[i].hex()} ({xs[i]!r}): expected lane 0x{exp[i]:X} "
        f"[{decode_int_ref(bits, exp[i])}], got 0x{got[i]:X} [{decode_int_ref(bits, got[i])}]"
        for i in bad[:16])


@pytest.mark.parametrize("name", ["int4", "int2"])
def test_int_encode_infinity_saturates(name):
    bits = SPEC_INT_FORMATS[name]
    got = np.asarray(golden.encode(np.array([np.inf, -np.inf]), name)).astype(np.int64)
    assert got.tolist() == [encode_int_ref(bits, math.inf, "rne"),
                            encode_int_ref(bits, -math.inf, "rne")]


@pytest.mark.parametrize("name", ["int4", "int2"])
def test_pack_unpack_lanes(name):
    bits = SPEC_INT_FORMATS[name]
    lanes = 8 // bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    vals = np.array(list(itertools.product(range(lo, hi + 1), repeat=lanes)), dtype=np.int64)
    exp_bytes = np.zeros(len(vals), dtype=np.int64)
    for i in range(lanes):
        exp_bytes |= (vals[:, i] & ((1 << bits) - 1)) << (bits * i)
    packed = golden.pack_lanes(vals, name)
    assert packed.dtype == np.uint8 and packed.shape == (len(vals),)
    assert np.array_equal(packed.astype(np.int64), exp_bytes)
    assert sorted(exp_bytes.tolist()) == list(range(256))

    allbytes = np.arange(256, dtype=np.uint8)
    unpacked = np.asarray(golden.unpack_lanes(allbytes, name))
    assert unpacked.shape == (256, lanes)
    exp_lanes = [[decode_int_ref(bits, (b >> (bits * i)) & ((1 << bits) - 1))
                  for i in range(lanes)] for b in range(256)]
    assert unpacked.astype(np.int64).tolist() == exp_lanes
    assert np.array_equal(golden.pack_lanes(unpacked, name), allbytes)
    assert np.array_equal(np.asarray(golden.unpack_lanes(packed, name)), vals)
    # leading dimensions carry through
    assert np.asarray(golden.unpack_lanes(allbytes.reshape(16, 16), name)).shape == \
        (16, 16, lanes)
