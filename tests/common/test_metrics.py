"""Tests for common.metrics: published SI-SNR values of the FQSE samples, hand formulas, PESQ/STOI/DNSMOS sanity
and the invalid-pair path of evaluate_pairs."""

from pathlib import Path

import numpy as np
import pytest

from common.audio import read_audio, write_audio
from common.metrics import (
    InvalidPairError,
    dnsmos,
    estoi,
    evaluate_pairs,
    paired_difference,
    pesq_mos_lqo_to_raw,
    pesq_nb_mos,
    pesq_nb_raw,
    pesq_raw_to_mos_lqo,
    pesq_wb,
    si_snr,
    si_snr_improvement,
    snr,
    stoi,
    summarize,
)

ANCHORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "anchors"
FQSE_SAMPLES = ANCHORS / "fqse_samples"
RATE = 16000


def _anchor(name):
    path = FQSE_SAMPLES / name
    if not path.is_file():
        pytest.skip(f"missing ../shared/anchors/fqse_samples/{name}")
    signal, rate = read_audio(path)
    assert rate == RATE
    return signal


def _speech_like(seconds=3.0):
    # harmonic complex with a gliding pitch and syllable-like gaps; PESQ's VAD finds utterances in it
    time = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 0.5 * time)) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = np.clip(np.sin(2 * np.pi * 3 * time), 0, None) ** 2
    signal = tone * envelope
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


def _at_snr(clean, snr_db, seed=1):
    noise = np.random.default_rng(seed).standard_normal(clean.size)
    gain = np.sqrt(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return (clean + gain * noise).astype(np.float32)


# ------------------------------------------------------------------------------------------------ SI-SNR
@pytest.mark.parametrize("sample, variant, published", [
    (1, "fqse", 14.01), (2, "fqse", 19.27), (3, "fqse", 16.71),
    (1, "qat", 13.20), (2, "qat", 18.89), (3, "qat", 16.26),
])
def test_si_snr_of_fqse_sample_outputs_equals_published_values(sample, variant, published):
    clean = _anchor(f"test_1spk_clean_{sample}.wav")
    enhanced = _anchor(f"test_1spk_enh_{sample}_{variant}.wav")
    # the enhanced files are longer than the clean ones; the published values are over the clean length
    assert si_snr(clean, enhanced[:clean.size]) == pytest.approx(published, abs=0.01)


def test_si_snr_equals_a_hand_projection():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal(4000) + 0.3
    estimate = 0.7 * reference + 0.2 * rng.standard_normal(4000) - 0.1
    t, e = reference - reference.mean(), estimate - estimate.mean()
    alpha = np.linalg.lstsq(t[:, None], e, rcond=None)[0][0]  # least-squares scale of the target
    expected = 10 * np.log10(np.sum((alpha * t) ** 2) / np.sum((e - alpha * t) ** 2))
    assert si_snr(reference, estimate) == pytest.approx(expected, abs=1e-6)
    assert si_snr(reference, 5.0 * estimate + 2.0) == pytest.approx(expected, abs=1e-6)  # scale and offset invariant
    mixture = reference + rng.standard_normal(4000)
    assert si_snr_improvement(reference, estimate, mixture) == pytest.approx(
        si_snr(reference, estimate) - si_snr(reference, mixture), abs=1e-12)
    assert si_snr_improvement(reference, estimate, mixture) == pytest.approx(
        expected - si_snr(reference, mixture), abs=1e-6)


def test_si_snr_of_noisy_fqse_samples():
    # README: the noisy files score 6.15 / 11.15 / 3.60 dB; an independent check of the length convention
    for sample, published in ((1, 6.15), (2, 11.15), (3, 3.60)):
        clean = _anchor(f"test_1spk_clean_{sample}.wav")
        noisy = _anchor(f"test_1spk_noisy_{sample}.wav")
        assert si_snr(clean, noisy[:clean.size]) == pytest.approx(published, abs=0.01)


def test_snr_is_the_crn_formula():
    reference = np.array([1.0, -2.0, 3.0, 0.5])
    estimate = np.array([1.1, -2.0, 2.7, 0.5])
    assert snr(reference, estimate) == pytest.approx(10 * np.log10(14.25 / 0.1), abs=1e-9)
    assert snr(reference, reference) == np.inf
    with pytest.raises(ValueError, match="trim or pad"):
        snr(reference, estimate[:3])


# -------------------------------------------------------------------------------------------------- PESQ
def test_raw_pesq_mapping_round_trips():
    raw = np.linspace(-0.5, 4.5, 21)
    mos = pesq_raw_to_mos_lqo(raw)
    assert np.all(np.diff(mos) > 0) and np.all((mos > 0.999) & (mos < 4.999))
    np.testing.assert_allclose(pesq_mos_lqo_to_raw(mos), raw, atol=1e-9)
    assert pesq_raw_to_mos_lqo(4.5) == pytest.approx(0.999 + 4 / (1 + np.exp(-1.4945 * 4.5 + 4.6607)))
    with pytest.raises(ValueError, match="0.999, 4.999"):
        pesq_mos_lqo_to_raw(0.5)


def test_pesq_of_a_signal_with_itself():
    clean = _speech_like()
    assert pesq_wb(clean, clean) > 4.4
    # P.862 gives its maximum raw score 4.5 for identical signals: this checks the inverse of P.862.1 end to end
    assert pesq_nb_raw(clean, clean) == pytest.approx(4.5, abs=1e-3)
    assert pesq_nb_mos(clean, clean) == pytest.approx(pesq_raw_to_mos_lqo(4.5), abs=1e-3)


def test_pesq_and_stoi_decrease_with_noise():
    clean = _anchor("test_1spk_clean_1.wav")[8000:56000]  # 3 s of real speech
    pesq_scores = [pesq_wb(clean, _at_snr(clean, level)) for level in (40, 20, 0)]
    stoi_scores = [stoi(clean, _at_snr(clean, level)) for level in (40, 20, 0)]
    assert pesq_scores[0] > pesq_scores[1] > pesq_scores[2]
    assert stoi_scores[0] > stoi_scores[1] > stoi_scores[2]


def test_stoi_of_identical_signals_is_one():
    clean = _speech_like()
    assert stoi(clean, clean) == pytest.approx(1.0, abs=1e-6)
    assert estoi(clean, clean) == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------------------------------ invalid pairs
def test_invalid_pairs_raise_with_reasons():
    clean = _speech_like()
    with pytest.raises(InvalidPairError, match="pesq_wb: estimate is silent"):
        pesq_wb(clean, np.zeros_like(clean))
    with pytest.raises(InvalidPairError, match="pesq_wb: Buffer needs to be at least 1/4 of a second"):
        pesq_wb(clean[:1000], clean[:1000])
    with pytest.raises(InvalidPairError, match=r"stoi: not enough non-silent frames \(pystoi returned 1e-5\)"):
        stoi(clean[:1000], clean[:1000])
    with pytest.raises(InvalidPairError, match="dnsmos: signal is silent"):
        dnsmos(np.zeros(RATE))


def test_evaluate_pairs_on_two_processes_records_invalid_pairs(tmp_path):
    clean = _speech_like()
    noisy = _at_snr(clean, 5)
    clean_path = write_audio(tmp_path / "clean.wav", clean, RATE)
    longer = np.concatenate([noisy, noisy[:800]])  # enhanced outputs may be longer than the clean file
    enhanced_path = write_audio(tmp_path / "enhanced.wav", longer, RATE)
    silent_path = tmp_path / "silent.wav"
    write_audio(silent_path, np.zeros(RATE, dtype=np.float32), RATE)
    pairs = [
        {"clean": clean_path, "enhanced": enhanced_path, "noisy": noisy, "name": "good"},
        {"clean": clean_path, "enhanced": silent_path, "name": "silent"},
        {"clean": clean[:1000], "enhanced": noisy[:1000], "name": "short"},
    ]
    rows = evaluate_pairs(pairs, metrics=("pesq_wb", "stoi", "si_snr", "si_snr_improvement"), processes=2,
                          score_noisy=True, progress=False)
    assert [row["name"] for row in rows] == ["good", "silent", "short"]
    good, silent, short = rows
    assert good["valid"] and good["reason"] == "" and good["length_difference"] == 800
    assert good["si_snr"] == pytest.approx(si_snr(clean, noisy), abs=1e-3)  # scored over the clean length
    assert good["si_snr_improvement"] == pytest.approx(0.0, abs=1e-3)
    # score_noisy: the noisy signal scored against the clean one (here identical to the enhanced one)
    assert good["noisy_si_snr"] == pytest.approx(good["si_snr"], abs=1e-3)
    assert good["noisy_pesq_wb"] == pytest.approx(good["pesq_wb"], abs=0.05)
    assert not silent["valid"] and "silent.wav" in silent["reason"] and "all-zero" in silent["reason"]
    assert silent["pesq_wb"] is None
    assert not short["valid"] and "Buffer needs to be at least 1/4 of a second" in short["reason"]
    assert "pystoi returned 1e-5" in short["reason"] and "si_snr_improvement: the pair has no noisy" in short["reason"]
    assert short["pesq_wb"] is None and short["si_snr"] == pytest.approx(si_snr(clean[:1000], noisy[:1000]))
    summary = summarize(rows)
    assert summary["invalid"] == 2 and len(summary["invalid_reasons"]) == 2
    assert summary["pesq_wb"] == (pytest.approx(good["pesq_wb"]), 0.0, 1)
    mean, std, count = summary["si_snr"]
    assert count == 2 and mean == pytest.approx((good["si_snr"] + short["si_snr"]) / 2)
    assert std == pytest.approx(abs(good["si_snr"] - short["si_snr"]) / 2)


# ------------------------------------------------------------------------------------------------ DNSMOS
def test_dnsmos_rates_clean_above_noisy_and_matches_speechmos():
    clean = _anchor("test_1spk_clean_1.wav")[8000:56000]
    noisy = _anchor("test_1spk_noisy_1.wav")[8000:56000]
    clean_scores, noisy_scores = dnsmos(clean), dnsmos(noisy)
    assert set(clean_scores) == {"sig", "bak", "ovrl", "p808"}
    for key in ("bak", "ovrl", "p808"):
        assert clean_scores[key] > noisy_scores[key]
    assert clean_scores["bak"] - noisy_scores["bak"] > 0.5  # 6 dB of noise costs the background score most
    # independent reference: speechmos' own implementation (librosa features, same bundled ONNX files)
    from speechmos.dnsmos import DNSMOS

    from common.metrics import dnsmos_model_paths

    primary, p808 = dnsmos_model_paths()
    reference = DNSMOS(str(primary), str(p808))(clean, RATE, False)
    assert clean_scores["sig"] == pytest.approx(reference["sig_mos"], abs=1e-3)
    assert clean_scores["bak"] == pytest.approx(reference["bak_mos"], abs=1e-3)
    assert clean_scores["ovrl"] == pytest.approx(reference["ovrl_mos"], abs=1e-3)
    assert clean_scores["p808"] == pytest.approx(reference["p808_mos"], abs=1e-3)


def test_paired_difference_matches_a_t_table_and_scipys_paired_t_test():
    from scipy.stats import ttest_rel

    baseline = np.array([0.50, 0.40, 0.62, 0.55, 0.47])
    candidate = baseline + np.array([0.01, 0.02, 0.03, 0.04, -0.05])
    result = paired_difference(candidate, baseline)
    differences = candidate - baseline
    # t(4, 0.975) = 2.776 in every printed t table
    by_hand = 2.776 * np.std(differences, ddof=1) / np.sqrt(5)
    assert result["count"] == 5
    assert result["mean"] == pytest.approx(0.01)
    assert result["half_width"] == pytest.approx(by_hand, rel=1e-3)
    interval = ttest_rel(candidate, baseline).confidence_interval(0.95)
    assert result["mean"] - result["half_width"] == pytest.approx(interval.low)
    assert result["mean"] + result["half_width"] == pytest.approx(interval.high)


def test_paired_difference_rejects_unpaired_scores_and_has_no_interval_for_one_pair():
    with pytest.raises(ValueError, match="one length"):
        paired_difference([1.0, 2.0], [1.0])
    single = paired_difference([2.0], [1.5])
    assert single["mean"] == 0.5 and single["count"] == 1 and np.isnan(single["half_width"])
