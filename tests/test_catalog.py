"""The torch-free catalogue names exactly what the registries hold, and the command line answers a misspelt name
without importing torch."""

import subprocess
import sys

from lifelong import catalog
from lifelong.methods import METHODS
from lifelong.reproduce import REPRODUCTIONS
from lifelong.reproduce_steps import PROTOCOLS
from lifelong.reproduce_der import REPRODUCTIONS as DER_REPRODUCTIONS
from lifelong.benchmarks import BENCHMARKS


def test_catalogue_matches_the_registries():
    assert list(catalog.METHODS) == list(METHODS)
    for name, (_, settings, keeps_exemplars) in catalog.METHODS.items():
        assert tuple(METHODS[name].settings) == settings, name
        assert METHODS[name].keeps_exemplars == keeps_exemplars, name
    assert list(catalog.SCENARIOS) == list(BENCHMARKS)
    assert list(catalog.REPRODUCTIONS) == [*REPRODUCTIONS, *PROTOCOLS, *DER_REPRODUCTIONS]


def test_method_all_runs_the_few_shot_methods_on_few_shot_scenarios_only():
    """`--method all`'s rule (catalog.methods_for_all): the few-shot scenarios are the registry's few-shot ones, and
    only there do the few-shot methods join the ordinary ones."""
    assert list(catalog.FEW_SHOT_SCENARIOS) == [name for name, (_, spec, _) in BENCHMARKS.items()
                                                if spec["kind"] == "few-shot"]
    assert set(catalog.FEW_SHOT_METHODS) == {"topic", "prototype", "cec", "fact"} <= set(catalog.METHODS)
    ordinary = [name for name in catalog.METHODS if name not in catalog.FEW_SHOT_METHODS]
    for scenario in ("split-digits", "split-mnist", "permuted-mnist", "split-omniglot", None):  # None: --data
        assert catalog.methods_for_all(scenario) == ordinary, scenario
    for scenario in catalog.FEW_SHOT_SCENARIOS:
        assert catalog.methods_for_all(scenario) == list(catalog.METHODS), scenario


def _imports_torch(*argv) -> tuple[bool, str]:
    """Run the command line in a fresh interpreter; report whether torch got imported, and stderr."""
    code = ("import sys; from lifelong.cli import main; code = main(sys.argv[1:]); "
            "print('torch' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    return done.stdout.strip().endswith("True"), done.stderr


def test_list_and_misspelt_names_need_no_torch():
    assert _imports_torch("list") == (False, "")
    for argv, word in ((("run", "--method", "ewc,ewk"), "method 'ewk'"),
                       (("run", "--scenario", "split-mnst"), "scenario 'split-mnst'"),
                       (("run", "--setting", "clas"), "setting 'clas'"),
                       (("reproduce", "hsu2019"), "reproduction 'hsu2019'")):
        imported, err = _imports_torch(*argv)
        assert not imported and err.count("\n") == 1 and f"unknown {word}" in err, (argv, err)
