"""Drift statistics: agreement with scipy, calibration on undrifted windows, power on injected
shifts, effect sizes on huge windows, verdicts of merged partitions and degenerate inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlops_runtime.monitor import drift
from mlops_runtime.monitor.drift import (
    DEFAULT_THRESHOLDS,
    PSI_EPSILON,
    SCORE_KINDS,
    chi2,
    choose_method,
    column_drift,
    dataset_drift,
    jensen_shannon,
    ks,
    ks_binned,
    psi,
    wasserstein,
    wasserstein_samples,
)
from mlops_runtime.sketches import (
    categorical_against,
    merge,
    numeric_against,
    reference_categorical,
    reference_numeric,
)

CATEGORIES = np.array(["a", "b", "c", "d"], dtype=object)
SHARES = [0.4, 0.3, 0.2, 0.1]


def categories(rng: np.random.Generator, size: int, shares=SHARES, labels=CATEGORIES):
    return rng.choice(labels, size, p=shares).astype(object)


def categorical(counts: dict[str, int]) -> dict:
    labels = np.repeat(np.array(list(counts), dtype=object), list(counts.values()))
    return reference_categorical(labels)


# --- agreement with scipy -----------------------------------------------------------------


def test_ks_is_scipy_ks_2samp_on_the_finite_values():
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=800), rng.normal(0.1, 1.0, 300)
    cur[:5] = np.nan
    assert ks(ref, cur) == stats.ks_2samp(ref, cur[5:]).pvalue


def test_wasserstein_samples_is_scipy_over_the_reference_std():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(3, 2, 1000), rng.normal(3.5, 2, 700)
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert wasserstein_samples(ref, cur) == pytest.approx(expected, rel=1e-12)


def test_chi2_is_scipys_two_sample_test_of_homogeneity():
    reference = categorical({"a": 400, "b": 300, "c": 200, "d": 100})
    current = categorical({"a": 50, "b": 20, "c": 20, "d": 10})
    table = [[400, 300, 200, 100], [50, 20, 20, 10]]
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert chi2(reference, current) == pytest.approx(expected, rel=1e-12)


def test_chi2_counts_a_window_only_category_as_a_column_the_reference_never_filled():
    reference = categorical({"a": 400, "b": 300, "c": 200, "d": 100})
    current = categorical({"a": 40, "b": 30, "c": 20, "d": 4, "new": 6})
    table = [[400, 300, 200, 100, 0], [40, 30, 20, 4, 6]]
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert chi2(reference, current) == pytest.approx(expected, rel=1e-12)
    assert expected < 1e-6  # six rows of a category 1000 reference rows never showed


def test_chi2_on_a_discrete_numeric_column_uses_its_values():
    rng = np.random.default_rng(2)
    reference = reference_numeric(rng.integers(0, 3, 900).astype(float))
    window = rng.integers(0, 3, 300).astype(float)
    current = numeric_against(reference, window)
    ref_counts = [reference["values"][k] for k in ("0", "1", "2")]
    cur_counts = [current["values"][k] for k in ("0", "1", "2")]
    expected = stats.chi2_contingency([ref_counts, cur_counts], correction=False).pvalue
    assert chi2(reference, current) == pytest.approx(expected, rel=1e-12)


def test_chi2_flags_undrifted_windows_larger_than_the_reference_at_the_nominal_rate():
    rng = np.random.default_rng(11)
    shares = [0.4, 0.3, 0.2, 0.1]
    values = np.array(list("abcd"), dtype=object)
    reference = reference_categorical(rng.choice(values, 1000, p=shares))
    flagged = sum(
        chi2(reference, categorical_against(reference, rng.choice(values, 5000, p=shares))) < 0.05
        for _ in range(200)
    )
    assert 2 <= flagged <= 20, flagged  # 1 % to 10 % of 200 windows


def test_jensen_shannon_is_scipys_distance_on_the_proportions():
    reference = categorical({"a": 400, "b": 300, "c": 200, "d": 100})
    current = categorical({"a": 10, "b": 30, "c": 20, "e": 40})
    p = np.array([400, 300, 200, 100, 0]) / 1000
    q = np.array([10, 30, 20, 0, 40]) / 100  # the reference's keys first, then the new one
    assert jensen_shannon(reference, current) == pytest.approx(jensenshannon(p, q), rel=1e-12)

    rng = np.random.default_rng(3)
    ref_sketch = reference_numeric(rng.normal(size=5000))
    cur_sketch = numeric_against(ref_sketch, rng.normal(0.2, 1.0, 3000))
    ref_p = np.asarray(ref_sketch["counts"]) / ref_sketch["count"]
    cur_p = np.asarray(cur_sketch["counts"]) / cur_sketch["count"]
    assert jensen_shannon(ref_sketch, cur_sketch, bins=None) == pytest.approx(
        jensenshannon(ref_p, cur_p), rel=1e-12
    )


def test_psi_on_reference_deciles():
    rng = np.random.default_rng(4)
    reference = reference_numeric(rng.normal(size=10_000))
    current = numeric_against(reference, rng.normal(0.3, 1.0, 4000))
    # 100 reference bins of 1% each group into deciles: ten bins a group.
    ref = np.asarray(reference["counts"], dtype=float)
    cur = np.asarray(current["counts"], dtype=float)

    def deciles(counts):
        return np.r_[counts[0], np.add.reduceat(counts[1:-1], np.arange(0, 100, 10)), counts[-1]]

    p, q = deciles(ref) / ref.sum(), deciles(cur) / cur.sum()
    p, q = np.where(p == 0, PSI_EPSILON, p), np.where(q == 0, PSI_EPSILON, q)
    assert psi(reference, current) == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-12)


def test_psi_by_hand_and_its_epsilon():
    reference = categorical({"a": 50, "b": 50})
    shifted = categorical({"a": 80, "b": 20})
    by_hand = 0.3 * np.log(0.8 / 0.5) + 0.3 * np.log(0.5 / 0.2)
    assert psi(reference, shifted) == pytest.approx(by_hand, rel=1e-12)
    only_a = categorical({"a": 10})
    with_epsilon = 0.5 * np.log(1 / 0.5) + (PSI_EPSILON - 0.5) * np.log(PSI_EPSILON / 0.5)
    assert psi(reference, only_a) == pytest.approx(with_epsilon, rel=1e-12)


def test_ks_binned_matches_scipy_when_the_edges_hold_every_jump():
    rng = np.random.default_rng(5)
    ref_values = rng.integers(0, 10, 4000).astype(float)
    cur_values = rng.integers(0, 11, 3000).astype(float)
    reference = reference_numeric(ref_values)
    assert reference["edges"] == [float(v) for v in range(10)]
    current = numeric_against(reference, cur_values)
    scipy_asymp = stats.ks_2samp(ref_values, cur_values, method="asymp").pvalue
    assert ks_binned(reference, current) == pytest.approx(scipy_asymp, rel=1e-9)


def test_ks_binned_statistic_is_a_lower_bound_of_the_exact_one():
    rng = np.random.default_rng(6)
    ref_values, cur_values = rng.normal(size=20_000), rng.normal(0.05, 1.1, 20_000)
    reference = reference_numeric(ref_values)
    current = numeric_against(reference, cur_values)
    exact = stats.ks_2samp(ref_values, cur_values, method="asymp")
    binned_p = ks_binned(reference, current)
    assert binned_p >= exact.pvalue
    binned_d = stats.kstwo.isf(binned_p, 10_000)
    assert exact.statistic - 0.01 < binned_d <= exact.statistic + 1e-9


@pytest.mark.parametrize(("shift", "scale"), [(0.1, 1.0), (0.5, 1.0), (0.0, 1.5), (-1.0, 0.7)])
def test_binned_wasserstein_is_within_two_percent_of_the_sample_value(shift, scale):
    rng = np.random.default_rng(7)
    ref_values = rng.normal(10, 3, 100_000)
    cur_values = rng.normal(10 + 3 * shift, 3 * scale, 50_000)
    reference = reference_numeric(ref_values)
    assert len(reference["edges"]) == 101
    binned = wasserstein(reference, numeric_against(reference, cur_values))
    assert binned == pytest.approx(wasserstein_samples(ref_values, cur_values), rel=0.02)


def test_binned_wasserstein_is_exact_on_the_same_binned_data():
    rng = np.random.default_rng(8)
    values = rng.lognormal(0, 1, 20_000)
    reference = reference_numeric(values)
    # Zero up to the rounding of the bin sums, which a different row order changes.
    shuffled = numeric_against(reference, rng.permutation(values))
    assert wasserstein(reference, shuffled) == pytest.approx(0.0, abs=1e-12)
    # Values on the edges: each bin holds one value, a step the sketch reproduces exactly.
    ref_values = rng.integers(0, 10, 5000).astype(float)
    cur_values = rng.integers(-2, 13, 4000).astype(float)
    ref_sketch = reference_numeric(ref_values)
    binned = wasserstein(ref_sketch, numeric_against(ref_sketch, cur_values))
    assert binned == pytest.approx(wasserstein_samples(ref_values, cur_values), rel=1e-9)


# --- calibration and power ----------------------------------------------------------------


def test_undrifted_windows_flag_at_about_the_nominal_rate():
    rng = np.random.default_rng(9)
    flagged = {"exact": 0, "binned": 0}
    for _ in range(200):
        ref_values = rng.normal(5, 2, 1000)
        window = rng.normal(5, 2, 500)
        reference = reference_numeric(ref_values)
        current = numeric_against(reference, window)
        exact = column_drift(
            reference, current, reference_rows=1000, reference_sample=ref_values,
            current_values=window,
        )  # fmt: skip
        binned = column_drift(reference, current, reference_rows=1000)
        assert exact["method"] == binned["method"] == "ks"
        flagged["exact"] += exact["drifted"]
        flagged["binned"] += binned["drifted"]
    assert 2 <= flagged["exact"] <= 20  # 1% .. 10% of 200 at p < 0.05
    assert flagged["binned"] <= flagged["exact"] + 2 and flagged["binned"] <= 20  # conservative


def test_large_reference_effect_sizes_stay_quiet_on_undrifted_windows():
    rng = np.random.default_rng(10)
    reference = reference_numeric(rng.normal(5, 2, 100_000))
    ref_cat = reference_categorical(categories(rng, 100_000))
    flagged = {"wasserstein": 0, "psi": 0, "jensenshannon": 0}
    for _ in range(100):
        current = numeric_against(reference, rng.normal(5, 2, 2000))
        cur_cat = categorical_against(ref_cat, categories(rng, 2000))
        flagged["wasserstein"] += column_drift(reference, current, reference_rows=100_000)[
            "drifted"
        ]
        flagged["psi"] += column_drift(reference, current, method="psi", reference_rows=100_000)[
            "drifted"
        ]
        verdict = column_drift(ref_cat, cur_cat, reference_rows=100_000)
        assert verdict["method"] == "jensenshannon"
        flagged["jensenshannon"] += verdict["drifted"]
    assert flagged == {"wasserstein": 0, "psi": 0, "jensenshannon": 0}


def numeric_windows(rng, kind):
    if kind == "mean +0.5 sd":
        return rng.normal(6, 2, 1000)
    return rng.normal(5, 3, 1000)  # sd x 1.5


@pytest.mark.parametrize("shift", ["mean +0.5 sd", "sd x 1.5"])
def test_small_reference_tests_catch_numeric_shifts(shift):
    rng = np.random.default_rng(11)
    ref_values = rng.normal(5, 2, 1000)
    reference = reference_numeric(ref_values)
    for _ in range(10):
        window = numeric_windows(rng, shift)
        current = numeric_against(reference, window)
        exact = column_drift(
            reference, current, reference_rows=1000, reference_sample=ref_values,
            current_values=window,
        )  # fmt: skip
        binned = column_drift(reference, current, reference_rows=1000)
        assert exact["method"] == "ks" and exact["drifted"], exact
        assert binned["drifted"], binned


@pytest.mark.parametrize("method", ["wasserstein", "psi", "jensenshannon"])
@pytest.mark.parametrize("shift", ["mean +0.5 sd", "sd x 1.5"])
def test_large_reference_effect_sizes_catch_numeric_shifts(method, shift):
    rng = np.random.default_rng(12)
    reference = reference_numeric(rng.normal(5, 2, 100_000))
    for _ in range(10):
        current = numeric_against(reference, numeric_windows(rng, shift))
        verdict = column_drift(reference, current, method=method, reference_rows=100_000)
        assert verdict["drifted"], verdict


CATEGORY_SHIFTS = {
    "mix": ([0.25, 0.25, 0.25, 0.25], CATEGORIES),
    "new category": ([0.36, 0.27, 0.18, 0.09, 0.1], np.append(CATEGORIES, "e")),
}


@pytest.mark.parametrize("shift", list(CATEGORY_SHIFTS))
@pytest.mark.parametrize(
    ("rows", "methods"), [(1000, ["chi2"]), (100_000, ["jensenshannon", "psi"])]
)
def test_category_shifts_are_caught(shift, rows, methods):
    rng = np.random.default_rng(13)
    reference = reference_categorical(categories(rng, rows))
    shares, labels = CATEGORY_SHIFTS[shift]
    for _ in range(10):
        current = categorical_against(reference, categories(rng, 1000, shares, labels))
        assert column_drift(reference, current, reference_rows=rows)["method"] == methods[0]
        for method in methods:
            verdict = column_drift(reference, current, method=method, reference_rows=rows)
            assert verdict["drifted"], verdict


def test_discrete_numeric_columns_compare_their_values():
    rng = np.random.default_rng(14)
    reference = reference_numeric(rng.choice([1.0, 2.0, 3.0], 50_000, p=[0.5, 0.3, 0.2]))
    assert reference["distinct"] == 3
    same = numeric_against(reference, rng.choice([1.0, 2.0, 3.0], 2000, p=[0.5, 0.3, 0.2]))
    new_value = numeric_against(reference, rng.choice([1.0, 2.0, 3.0, 4.0], 2000))
    quiet = column_drift(reference, same, reference_rows=50_000)
    loud = column_drift(reference, new_value, reference_rows=50_000)
    assert quiet["method"] == loud["method"] == "jensenshannon"
    assert not quiet["drifted"] and loud["drifted"]


def test_huge_windows_make_ks_significant_but_effect_sizes_small():
    rng = np.random.default_rng(15)
    rows = 1_000_000
    columns = {
        "same": (rng.normal(0, 1, rows), rng.normal(0, 1, rows)),
        "shift 0.01 sd": (rng.normal(0, 1, rows), rng.normal(0.01, 1, rows)),
        "scale x1.01": (rng.exponential(1.0, rows), rng.exponential(1.01, rows)),
    }
    for name, (ref_values, cur_values) in columns.items():
        reference = reference_numeric(ref_values)
        current = numeric_against(reference, cur_values)
        p_value = ks(ref_values, cur_values)
        if name != "same":
            assert p_value < 0.001, name  # significant, yet of no practical size
        for method in ("wasserstein", "psi", "jensenshannon"):
            verdict = column_drift(reference, current, method=method, reference_rows=rows)
            assert not verdict["drifted"] and verdict["score"] < 0.03, (name, verdict)
    ref_cat = reference_categorical(categories(rng, rows))
    cur_cat = categorical_against(ref_cat, categories(rng, rows, [0.395, 0.3, 0.205, 0.1]))
    assert chi2(ref_cat, cur_cat) < 0.001
    assert jensen_shannon(ref_cat, cur_cat) < 0.01 and psi(ref_cat, cur_cat) < 0.001


# --- merged partitions ----------------------------------------------------------------------


def assert_same_verdict(merged: dict, whole: dict) -> None:
    """Equal verdicts; scores equal up to the rounding of summing the bins in two parts."""
    assert {k: v for k, v in merged.items() if k != "score"} == {
        k: v for k, v in whole.items() if k != "score"
    }
    assert merged["score"] == pytest.approx(whole["score"], rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("method", ["auto", "ks", "chi2", "wasserstein", "jensenshannon", "psi"])
def test_merged_halves_give_the_verdicts_of_the_whole(method):
    rng = np.random.default_rng(16)
    reference = reference_numeric(rng.normal(0, 1, 5000))
    window = rng.normal(0.08, 1.05, 6001)
    whole = numeric_against(reference, window)
    halves = merge(
        numeric_against(reference, window[:2500]), numeric_against(reference, window[2500:])
    )
    assert halves["counts"] == whole["counts"]
    for rows in (1000, 5000):
        kwargs = {"method": method, "reference_rows": rows}
        merged_verdict = column_drift(reference, halves, **kwargs)
        assert_same_verdict(merged_verdict, column_drift(reference, whole, **kwargs))
        if merged_verdict["method"] != "wasserstein":  # the others read the counts only
            assert merged_verdict == column_drift(reference, whole, **kwargs)
    if method in ("ks", "wasserstein"):
        return
    ref_cat = reference_categorical(categories(rng, 3000))
    labels = categories(rng, 4001, [0.35, 0.3, 0.2, 0.15])
    whole_cat = categorical_against(ref_cat, labels)
    halves_cat = merge(
        categorical_against(ref_cat, labels[:1000]), categorical_against(ref_cat, labels[1000:])
    )
    for rows in (1000, 5000):
        kwargs = {"method": method, "reference_rows": rows}
        assert column_drift(ref_cat, halves_cat, **kwargs) == column_drift(
            ref_cat, whole_cat, **kwargs
        )


# --- defaults and verdicts --------------------------------------------------------------------


def test_defaults_follow_evidently():
    assert choose_method("numeric", 1000, None) == "ks"
    assert choose_method("numeric", 1000, 6) == "ks"
    assert choose_method("numeric", 1000, 5) == "chi2"
    assert choose_method("categorical", 1000, None) == "chi2"
    assert choose_method("numeric", 1001, 6) == "wasserstein"
    assert choose_method("numeric", 1001, 5) == "jensenshannon"
    assert choose_method("categorical", 10**6, 2) == "jensenshannon"
    with pytest.raises(ValueError, match="kind"):
        choose_method("text", 10, None)
    assert DEFAULT_THRESHOLDS == {
        "ks": 0.05, "chi2": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1,
    }  # fmt: skip
    assert {m for m, k in SCORE_KINDS.items() if k == "p_value"} == {"ks", "chi2"}


def test_verdict_layout_thresholds_and_direction():
    rng = np.random.default_rng(17)
    ref_values = rng.normal(size=800)
    reference = reference_numeric(ref_values)
    window = rng.normal(0.15, 1, 400)
    current = numeric_against(reference, window)
    verdict = column_drift(reference, current, reference_rows=800)
    assert set(verdict) == {"method", "score", "threshold", "drifted", "score_kind", "status"}
    assert verdict["status"] == "ok" and verdict["score_kind"] == "p_value"
    assert verdict["score"] == ks_binned(reference, current)
    exact = column_drift(
        reference, current, reference_rows=800, reference_sample=ref_values, current_values=window
    )
    assert exact["score"] == ks(ref_values, window) and exact["threshold"] == 0.05
    # A p-value drifts below the threshold, a distance at or above it.
    loose = column_drift(reference, current, reference_rows=800, threshold=exact["score"] * 1.01)
    assert loose["drifted"] == (verdict["score"] < exact["score"] * 1.01)
    at = wasserstein(reference, current)
    assert column_drift(reference, current, method="wasserstein", threshold=at, reference_rows=800)[
        "drifted"
    ]
    assert not column_drift(
        reference, current, method="wasserstein", threshold=at * 1.001, reference_rows=800
    )["drifted"]
    json.dumps(verdict, allow_nan=False)


def test_degenerate_inputs_give_a_status_not_an_exception():
    rng = np.random.default_rng(18)
    reference = reference_numeric(rng.normal(size=300))
    ref_cat = reference_categorical(categories(rng, 300))
    cases = {
        "empty": (reference, numeric_against(reference, np.array([]))),
        "all_null": (reference, numeric_against(reference, np.array([np.nan, np.inf]))),
        "unsupported_reference": ({**reference, "version": 2}, numeric_against(reference, [1.0])),
        "empty_reference": (
            reference_numeric(np.full(4, np.nan)),
            numeric_against(reference_numeric(np.full(4, np.nan)), [1.0]),
        ),
        "mismatch": (reference, numeric_against(reference_numeric(rng.normal(size=9)), [1.0])),
    }
    cases["empty categorical"] = (ref_cat, categorical_against(ref_cat, np.array([], dtype=object)))
    cases["all_null categorical"] = (
        ref_cat,
        categorical_against(ref_cat, np.array([None, np.nan])),
    )
    cases["kinds differ"] = (reference, ref_cat)
    cases["unknown kind"] = ({"kind": "text", "version": 1}, ref_cat)
    expected = {
        "empty categorical": "empty", "all_null categorical": "all_null",
        "kinds differ": "mismatch", "unknown kind": "unsupported_reference",
    }  # fmt: skip
    for name, (ref, cur) in cases.items():
        for method in ("auto", "psi", "chi2"):
            verdict = column_drift(ref, cur, method=method, reference_rows=300)
            assert verdict["status"] == expected.get(name, name), (name, verdict)
            assert verdict["score"] is None and verdict["drifted"] is False
            json.dumps(verdict, allow_nan=False)


def test_constant_and_single_category_columns_score_cleanly():
    constant = reference_numeric(np.full(5000, 2.0))
    same = numeric_against(constant, np.full(100, 2.0))
    moved = numeric_against(constant, np.full(100, 3.0))
    for method in ("auto", "ks", "chi2", "wasserstein", "jensenshannon", "psi"):
        for rows in (100, 5000):
            quiet = column_drift(constant, same, method=method, reference_rows=rows)
            loud = column_drift(constant, moved, method=method, reference_rows=rows)
            assert quiet["status"] == loud["status"] == "ok"
            assert not quiet["drifted"] and loud["drifted"], (method, rows, quiet, loud)
    single = categorical({"only": 50})
    verdict = column_drift(single, categorical({"only": 7}), reference_rows=50)
    assert verdict["method"] == "chi2" and verdict["score"] == 1.0 and not verdict["drifted"]


def test_configuration_errors_raise():
    ref_cat = categorical({"a": 5, "b": 5})
    with pytest.raises(ValueError, match="unknown drift method"):
        column_drift(ref_cat, ref_cat, method="kl", reference_rows=10)
    with pytest.raises(ValueError, match="numeric"):
        column_drift(ref_cat, ref_cat, method="wasserstein", reference_rows=10)
    with pytest.raises(ValueError, match="without values"):
        drift.psi(ref_cat, categorical_against(ref_cat, np.array([], dtype=object)))


def test_dataset_drift_counts_scored_columns_only():
    verdicts = {
        "a": {"status": "ok", "drifted": True},
        "b": {"status": "ok", "drifted": False},
        "c": {"status": "ok", "drifted": True},
        "d": {"status": "empty", "drifted": False},
        "e": {"status": "ok", "drifted": False},
    }
    result = dataset_drift(verdicts, 0.5)
    assert result == {
        "drifted_columns": 2, "columns": 4, "share": 0.5, "drift_share": 0.5, "drifted": True,
    }  # fmt: skip
    assert not dataset_drift(verdicts, 0.51)["drifted"]
    assert dataset_drift({"d": verdicts["d"]}, 0.0) == {
        "drifted_columns": 0, "columns": 0, "share": 0.0, "drift_share": 0.0, "drifted": False,
    }  # fmt: skip
