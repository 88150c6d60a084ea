"""scikit-learn's own estimator checks on every estimator of lifelong.hebbian; each expected failure says why."""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from lifelong.hebbian import (CompetitiveClassifier, CompetitiveLearning, Hebb, HebbianMemory, KrotovHopfield,
                              NeuralGas, Oja, Sanger)

_BIPOLAR = ("the check feeds real-valued data, and HebbianMemory stores bipolar (+1/-1) patterns only: it "
            "rejects any other value with a ValueError by design (the bad-input tests check that error)")
# every check that fits HebbianMemory on scikit-learn's real-valued test data
_HEBBIAN_MEMORY_FAILS = (
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
    "check_estimators_nan_inf", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_1sample",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d",
)


def expected_failed_checks(estimator):
    if isinstance(estimator, HebbianMemory):
        return {name: _BIPOLAR for name in _HEBBIAN_MEMORY_FAILS}
    return {}


ESTIMATORS = [HebbianMemory(), Hebb(), Oja(), Sanger(n_units=2), CompetitiveLearning(), CompetitiveClassifier(),
              NeuralGas(max_iter=5), KrotovHopfield(n_units=20, max_iter=5)]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check(estimator)
