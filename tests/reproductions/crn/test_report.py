"""CRN report checks (reproductions/crn/report.py): the CRN against the unprocessed input per noise and on
average, paired over the same mixtures, and the mini targets."""
import pytest


def test_beats_unprocessed_is_checked_per_noise_as_well_as_on_average():
    from reproductions.crn.report import crn_beats_unprocessed

    def cells(stoi, pesq):
        return {"stoi_-5": stoi, "pesq_-5": pesq}

    summaries = {("unprocessed", "all"): cells(55.0, 0.80), ("crn", "all"): cells(58.0, 0.84),
                 ("unprocessed", "babble"): cells(49.0, 0.77), ("crn", "babble"): cells(50.0, 0.71),
                 ("lstm2", "babble"): cells(60.0, 0.90)}
    verdicts = crn_beats_unprocessed(summaries, [-5.0])
    assert verdicts == {"all/stoi_-5": True, "all/pesq_-5": True, "babble/stoi_-5": True, "babble/pesq_-5": False}


def test_crn_minus_unprocessed_pairs_the_same_mixtures_per_noise():
    from reproductions.crn.report import crn_minus_unprocessed

    def row(name, noise_type, stoi, pesq):
        return {"name": name, "noise_type": noise_type, "snr_db": -5.0, "stoi": stoi, "pesq_nb_raw": pesq}

    unprocessed = [row("a", "babble", 0.50, 1.0), row("b", "babble", 0.40, 1.2), row("a", "crowd", 0.60, 0.9),
                   row("b", "crowd", 0.70, 1.1), row("c", "crowd", 0.65, 1.0)]
    # listed in another order, and utterance "c" was not scored for the CRN: it must drop out of the pairs
    crn = [row("b", "crowd", 0.74, 1.3), row("b", "babble", 0.38, 1.5), row("a", "babble", 0.46, 1.1),
           row("a", "crowd", 0.62, 1.0)]
    differences = crn_minus_unprocessed(crn, unprocessed, [-5.0])
    assert differences["babble/stoi_-5"]["mean"] == pytest.approx(-0.03)
    assert differences["babble/pesq_-5"]["mean"] == pytest.approx(0.2)
    assert differences["crowd/stoi_-5"]["count"] == 2
    assert differences["crowd/stoi_-5"]["mean"] == pytest.approx(0.03)
    assert differences["all/stoi_-5"]["count"] == 4
    assert differences["all/stoi_-5"]["mean"] == pytest.approx(0.0)
    # two pairs whose differences are -0.02 and -0.04: half-width t(1, 0.975) = 12.706 x 0.01
    assert differences["babble/stoi_-5"]["half_width"] == pytest.approx(0.12706, rel=1e-3)


def test_mini_targets_are_gains_over_the_unprocessed_average():
    from reproductions.crn.report import mini_targets

    summaries = {("unprocessed", "all"): {"stoi_-5": 60.0, "stoi_5": 80.0, "pesq_wb": 1.2, "si_snr": 0.0},
                 ("crn", "all"): {"stoi_-5": 62.0, "stoi_5": 84.0, "pesq_wb": 1.5, "si_snr": 3.5},
                 ("crn", "babble"): {"stoi_-5": 10.0, "stoi_5": 10.0, "pesq_wb": 1.0, "si_snr": -9.0}}
    targets = mini_targets(summaries)
    assert set(targets) == {"crn"}
    assert targets["crn"] == pytest.approx({"si_snri": 3.5, "pesq_wb_gain": 0.3, "stoi_gain": 0.03})
