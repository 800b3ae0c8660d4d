"""The book's rule (advbook.claims, rule v3): each branch tested at its boundary, so that removing
or weakening it (another quantile, a margin ignored, no Holm) fails a test, and its error rates
measured by simulation."""
import math

import numpy as np
import pytest
from scipy.stats import skewnorm, t

from advbook import claims
from advbook.claims import (ALPHA, CONFIRMED, INCONCLUSIVE, LEVEL, NOT_CONFIRMED, UNTESTABLE, Claim, Judgement,
                            all_of, judge)


def with_bound(claim_kind, bound, sd=1.0, n=5, side="lower"):
    """Differences whose rule bound (`side`) lands at `bound`: mean = bound -/+ q * sd / sqrt(n)."""
    q = t.ppf(LEVEL, n - 1) * sd / math.sqrt(n)
    mean = bound + q if side == "lower" else bound - q
    z = np.arange(n) - (n - 1) / 2
    z = z / z.std(ddof=1) * sd
    return list(mean + z)


def test_the_bounds_are_one_sided_t_at_the_rules_level():
    diffs = [1.0, 2.0, 4.0, 3.0, 5.0]
    j = judge(Claim("A above B", ""), diffs)
    se = np.std(diffs, ddof=1) / math.sqrt(5)
    assert j.se == pytest.approx(se)
    assert j.lower == pytest.approx(3.0 - t.ppf(LEVEL, 4) * se) and j.upper == pytest.approx(3.0 + t.ppf(LEVEL, 4) * se)
    # every bound of the rule is also a 95 % bound
    assert LEVEL >= 0.95


@pytest.mark.parametrize("n", [3, 5, 8])
def test_greater_is_confirmed_just_above_zero_and_not_just_below(n):
    greater = Claim("A above B", "", "greater")
    assert judge(greater, with_bound("greater", +0.01, n=n)).verdict == CONFIRMED
    assert judge(greater, with_bound("greater", -0.01, n=n)).verdict == INCONCLUSIVE


def test_less_mirrors_greater():
    less = Claim("A below B", "", "less")
    assert judge(less, with_bound("less", -0.01, side="upper")).verdict == CONFIRMED
    assert judge(less, with_bound("less", +0.01, side="upper")).verdict == INCONCLUSIVE
    # the opposite sign refutes
    assert judge(less, with_bound("less", +0.01, side="lower")).verdict == NOT_CONFIRMED


def test_the_opposite_sign_refutes_and_the_minimum_effect_test_refutes_a_too_small_effect():
    plain = Claim("A above B", "", "greater")
    assert judge(plain, with_bound("greater", -0.01, side="upper")).verdict == NOT_CONFIRMED
    assert judge(plain, with_bound("greater", +0.01, side="upper")).verdict == INCONCLUSIVE
    # the paper's effect is 4 points: an upper bound below 2 (half of it) excludes what the claim needs
    paper = Claim("A above B", "", "greater", paper_effect=4.0)
    j = judge(paper, with_bound("greater", 1.99, side="upper", sd=3.0))
    assert j.verdict == NOT_CONFIRMED and "smallest effect the claim needs (+2.00: half the paper's effect)" in j.reason
    assert judge(paper, with_bound("greater", 2.01, side="upper", sd=3.0)).verdict == INCONCLUSIVE
    # a claim's own minimum effect, stated with why, replaces half the paper's
    own = Claim("A above B", "", "greater", paper_effect=4.0, min_effect=1.0, min_effect_why="the paper's rounding")
    assert judge(own, with_bound("greater", 1.5, side="upper", sd=3.0)).verdict == INCONCLUSIVE
    with pytest.raises(ValueError, match="says why"):
        Claim("A above B", "", "greater", min_effect=1.0)


def test_a_confirmation_outranks_an_effect_smaller_than_the_papers():
    """A above B for sure, but by less than half the paper's effect: the claim (A above B) holds."""
    paper = Claim("A above B", "", "greater", paper_effect=40.0)
    j = judge(paper, [1.0, 1.1, 0.9, 1.05, 0.95])
    assert j.verdict == CONFIRMED and j.upper < 20


def test_within_is_two_one_sided_tests_with_the_margin_on_both_sides():
    within = Claim("A within 1 of B", "", "within", margin=1.0)
    assert judge(within, [0.0, 0.1, -0.1, 0.05, -0.05]).verdict == CONFIRMED
    # the upper bound just inside / just outside the margin
    assert judge(within, with_bound("within", 0.99, side="upper", sd=0.2)).verdict == CONFIRMED
    assert judge(within, with_bound("within", 1.01, side="upper", sd=0.2)).verdict == INCONCLUSIVE
    assert judge(within, with_bound("within", -0.99, side="lower", sd=0.2)).verdict == CONFIRMED
    assert judge(within, with_bound("within", -1.01, side="lower", sd=0.2)).verdict == INCONCLUSIVE
    # refuted only when a bound lies beyond the margin on the far side
    assert judge(within, with_bound("within", 1.01, side="lower", sd=0.2)).verdict == NOT_CONFIRMED
    assert judge(within, with_bound("within", 0.99, side="lower", sd=0.2)).verdict == INCONCLUSIVE
    assert judge(within, with_bound("within", -1.01, side="upper", sd=0.2)).verdict == NOT_CONFIRMED
    band = Claim("a drop of 2 to 4", "", "within", margin=1.0, center=3.0)
    assert judge(band, [2.9, 3.0, 3.1, 3.05, 2.95]).verdict == CONFIRMED
    assert judge(band, [0.1, 0.0, -0.1, 0.05, -0.05]).verdict == NOT_CONFIRMED


def test_at_most_honours_its_margin_in_both_branches():
    """The old rule refuted 'at most 0.5' with 0.4 +- 0.1 (it tested A above B, not above the margin)."""
    at_most = Claim("no X beats Y by more than 0.5", "", "at most", margin=0.5)
    assert judge(at_most, [0.3, 0.4, 0.5, 0.35, 0.45]).verdict == INCONCLUSIVE
    assert judge(at_most, with_bound("at most", 0.51, side="lower", sd=0.1)).verdict == NOT_CONFIRMED
    assert judge(at_most, with_bound("at most", 0.49, side="lower", sd=0.1)).verdict == INCONCLUSIVE
    assert judge(at_most, with_bound("at most", 0.49, side="upper", sd=0.1)).verdict == CONFIRMED
    assert judge(at_most, with_bound("at most", 0.51, side="upper", sd=0.1)).verdict == INCONCLUSIVE


def test_fewer_than_three_seeds_decide_nothing_and_a_smoke_run_decides_nothing():
    greater = Claim("A above B", "", "greater")
    assert judge(greater, [5.0, 5.1]).verdict == INCONCLUSIVE
    assert judge(greater, [5.0, 5.1, 4.9]).verdict == CONFIRMED
    rows = [claims.row(greater, judge(greater, [5.0, 5.1, 4.9]))]
    assert claims.decided_at(True, rows)[0]["verdict"] == CONFIRMED
    smoke = claims.decided_at(False, rows)[0]
    assert smoke["verdict"] == INCONCLUSIVE and smoke["why"] == "a smoke run decides nothing"
    # an untestable claim stays untestable at any scale
    assert claims.decided_at(False, [claims.row(greater, claims.untestable("a derivation"))])[0]["verdict"] == UNTESTABLE


def test_the_smallest_detectable_effect_is_stated_at_80_percent_power():
    diffs = [1.0, 2.0, 4.0, 3.0, 5.0]
    j = judge(Claim("A above B", ""), diffs)
    assert j.min_detectable == pytest.approx((t.ppf(LEVEL, 4) + t.ppf(0.8, 4)) * j.se)
    assert "smallest effect this design detects" in judge(Claim("A above B", ""), [1.0, -1.0, 0.5]).reason


def _refuted(p):
    return Judgement(NOT_CONFIRMED, p_refute=p, reason="refuted")


def test_holm_corrects_a_refutation_over_a_claims_parts():
    yes = Judgement(CONFIRMED, p_refute=0.9)
    # refuted alone (p < ALPHA), but not below ALPHA / 2 with two parts
    j = all_of([("a", _refuted(ALPHA * 0.7)), ("b", yes)])
    assert j.verdict == INCONCLUSIVE and "not after Holm's correction over 2 parts" in j.reason
    assert all_of([("a", _refuted(ALPHA * 0.4)), ("b", yes)]).verdict == NOT_CONFIRMED
    # step-down: the second smallest needs ALPHA / 1 once the first is rejected
    j = all_of([("a", _refuted(ALPHA * 0.4)), ("b", _refuted(ALPHA * 0.9))])
    assert j.verdict == NOT_CONFIRMED and "not confirmed for a, b" in j.reason
    # a lone part is its own family
    assert all_of([("a", _refuted(ALPHA * 0.9))]).verdict == NOT_CONFIRMED
    # a part a guard held counts in the family but never stops the step-down, whatever its p-value
    held = Judgement(INCONCLUSIVE, p_refute=0.0, reason="a compared model did not learn")
    assert all_of([("a", _refuted(ALPHA * 0.7)), ("held", held)]).verdict == INCONCLUSIVE
    assert all_of([("a", _refuted(ALPHA * 0.4)), ("held", held)]).verdict == NOT_CONFIRMED


def test_all_of_needs_every_part_to_confirm():
    yes, maybe = Judgement(CONFIRMED), Judgement(INCONCLUSIVE)
    assert all_of([("a", yes), ("b", yes)]).verdict == CONFIRMED
    assert all_of([("a", yes), ("b", maybe)]).verdict == INCONCLUSIVE
    assert all_of([("a", maybe), ("b", _refuted(ALPHA / 10))]).verdict == NOT_CONFIRMED
    assert all_of([("a", claims.untestable("x")), ("b", claims.untestable("y"))]).verdict == UNTESTABLE


def test_a_refuted_claim_still_names_its_undecided_parts_and_why():
    guarded = Judgement(INCONCLUSIVE, 7.0, 1.0, 3, "the baseline did not become robust")
    reason = all_of([("vs X", guarded), ("vs Y", _refuted(ALPHA / 10))]).reason
    assert reason.startswith("not confirmed for vs Y")
    assert "undecided, vs X: the baseline did not become robust" in reason


def _side(values, images):
    rows = [{"variant": "A", "seed": s, "pgd": v, "images": {"pgd": images.format(seed=s)}, "model_clean": 0.9}
            for s, v in enumerate(values)]
    return claims.by_seed(rows, "pgd", variant="A")


def test_the_sampling_of_test_images_enters_the_standard_error_where_every_seed_shares_them():
    shared = "test split, first 500, attack seed 0"
    a, b = _side([0.50, 0.52, 0.51], shared), _side([0.40, 0.41, 0.42], shared)
    d = claims.paired_differences(a, b)
    disagree = sum(min(x + y, 2 - x - y) for x, y in zip([0.50, 0.52, 0.51], [0.40, 0.41, 0.42])) / 3
    assert d.image_variance() == pytest.approx((disagree - 0.1 ** 2) / 500 * 100 ** 2)
    j = judge(Claim("A above B", ""), d)
    assert j.se == pytest.approx(math.sqrt(np.var(list(d), ddof=1) / 3 + d.image_variance()))
    assert "test-image sampling included" in j.reason
    # each seed on its own images: the seeds' spread holds the images' sampling already
    own = "test subset 500 (seed {seed}), first 500, attack seed 0"
    d = claims.paired_differences(_side([0.50, 0.52, 0.51], own), _side([0.40, 0.41, 0.42], own))
    assert d.image_variance() == 0.0
    # not an accuracy (seconds): no image term
    assert claims.paired_differences({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.5, 1: 1.0, 2: 1.5}).image_variance() == 0.0


# --- the rule's error rates, simulated -------------------------------------------------------------

REPLICATES = 3000
TOLERANCE = 0.05 + 3 * math.sqrt(0.05 * 0.95 / REPLICATES)  # 5 % plus three Monte Carlo standard errors


def _skewnorm(a, rng):
    delta = a / math.sqrt(1 + a * a)
    mu, sd = delta * math.sqrt(2 / math.pi), math.sqrt(1 - 2 * delta ** 2 / math.pi)
    return lambda size: (skewnorm.rvs(a, size=size, random_state=rng) - mu) / sd


def _distributions(rng):
    """Per-seed differences of mean 0 and sd 1: normal, and skewed up to skewness 1 either way."""
    gamma = lambda size: (rng.gamma(4.0, 1.0, size) - 4.0) / 2.0  # noqa: E731  skewness 1
    right = _skewnorm(10.0, rng)
    return {"normal": lambda size: rng.standard_normal(size), "gamma, right": gamma,
            "gamma, left": lambda size: -gamma(size), "skew-normal, right": right,
            "skew-normal, left": lambda size: -right(size)}


@pytest.mark.parametrize("n", [3, 5, 10])
def test_the_rules_error_rates_stay_at_5_percent(n):
    """True effect 0: a 'greater' claim is confirmed at most 5 % of the time; true effect equal to the
    smallest the claim needs: it is refuted at most 5 % of the time; a 'within' claim whose true
    difference sits on its margin is confirmed at most 5 %; a claim of three parts, each at the
    effect it needs, is refuted at most 5 % (Holm); for normal and skewed differences."""
    rng = np.random.default_rng(n)
    greater = Claim("A above B", "", "greater", paper_effect=2.0)   # needs +1
    within = Claim("A within 1 of B", "", "within", margin=1.0)
    for name, draw in _distributions(rng).items():
        x = draw((REPLICATES, n))
        confirmed_at_0 = np.mean([judge(greater, list(row)).verdict == CONFIRMED for row in x])
        refuted_at_needed = np.mean([judge(greater, list(row + 1.0)).verdict == NOT_CONFIRMED for row in x])
        within_at_margin = np.mean([judge(within, list(row + 1.0)).verdict == CONFIRMED for row in x])
        parts = draw((REPLICATES, 3, n)) + 1.0
        claim_refuted = np.mean([all_of([(str(i), judge(greater, list(p))) for i, p in enumerate(three)]).verdict
                                 == NOT_CONFIRMED for three in parts])
        for what, rate in (("false confirmation", confirmed_at_0), ("false refutation", refuted_at_needed),
                           ("false equivalence", within_at_margin), ("false refutation of a claim", claim_refuted)):
            assert rate <= TOLERANCE, f"{what} at n = {n}, {name} differences: {rate:.3f}"
