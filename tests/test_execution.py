"""A scenario's execution label is derived from what its steps touch and what the target provides.

The planted lies at the end are bindings that would overstate: a step that claims the control plane while
it reads a fact the lab seeds itself, and a scenario whose steps check nothing. The suite reports neither
as real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from boutique_suite.actions import cluster
from boutique_suite.context.sites import site_for
from boutique_suite.reporting import traceability
from boutique_suite.reporting.evidence import Execution
from boutique_suite.run import targets
from boutique_suite.run.targets import Provision
from boutique_suite.run.touches import Touches, declared, touches, understated
from provisioning.lab import site as lab_site

REAL = Provision(mode="real")
KWOK = Provision(mode="simulated", why="KWOK nodes")
LAB = targets.load("lab")
ONPREM = targets.load(str(targets.TARGETS_DIR / "onprem.example.yaml"))
BINDINGS = {b.func.__name__: b.func for b in traceability.bindings()}


def run(provided: dict[Touches, Provision], *steps: frozenset[Touches] | None) -> Execution:
    execution = Execution(provided=provided)
    for n, touched in enumerate(steps):
        execution.step(f"step {n}", touched)
    return execution


def of(*bindings: str) -> list[frozenset[Touches] | None]:
    return [declared(BINDINGS[name]) for name in bindings]


CP = frozenset({Touches.control_plane})
NODES = frozenset({Touches.node_runtime})
FILES = frozenset({Touches.file_only})
PROVIDED = {Touches.control_plane: REAL, Touches.node_runtime: KWOK}


def test_one_simulated_step_among_nine_real_ones_makes_the_scenario_simulated() -> None:
    execution = run(PROVIDED, *[CP] * 9, NODES)
    assert execution.mode == "simulated"
    assert execution.label == "simulated (node_runtime: KWOK nodes)"


def test_steps_touching_only_what_the_target_provides_for_real_are_real() -> None:
    assert run(PROVIDED, *[CP] * 10).label == "real"


def test_reading_files_only_is_static_and_does_not_weaken_a_real_scenario() -> None:
    assert run(PROVIDED, FILES, FILES).label == "static"
    assert run(PROVIDED, FILES, CP).label == "real"
    assert run(PROVIDED, FILES, NODES).mode == "simulated"


def test_a_step_that_declares_nothing_is_not_real() -> None:
    execution = run(PROVIDED, CP, None)
    assert execution.mode == "simulated"
    assert execution.reasons == ["step 'step 1' does not declare what it touches"]


def test_a_touch_the_target_does_not_list_is_not_real() -> None:
    assert run({}, CP).reasons == ["control_plane: the target does not provide control_plane"]


def test_a_touch_the_target_lacks_makes_the_step_skip_with_the_targets_reason() -> None:
    execution = Execution(provided=LAB.execution)
    assert execution.step("runner", frozenset({Touches.gitlab})) == [LAB.provision(Touches.gitlab).why]
    assert execution.step("read", CP) == []


def test_a_step_can_still_downgrade_the_scenario_at_run_time() -> None:
    execution = run(PROVIDED, CP)
    execution.simulated("pod CPU usage is simulated")
    assert execution.label == "simulated (pod CPU usage is simulated)"


def test_the_summary_entry_carries_mode_label_reasons_and_touches() -> None:
    from boutique_suite.reporting import evidence

    run(PROVIDED, CP, NODES).record("node::id", "A scenario", "passed")
    entry = evidence._SUMMARY.pop("node::id")
    assert entry["execution"] == "simulated"
    assert entry["label"] == "simulated (node_runtime: KWOK nodes)"
    assert entry["simulated"] == ["node_runtime: KWOK nodes"]
    assert entry["touches"] == ["control_plane", "node_runtime"]


def test_a_missing_entry_in_the_target_file_is_absent_with_the_files_name() -> None:
    provision = LAB.model_copy(update={"execution": {}}).provision(Touches.argocd)
    assert provision.mode == "absent"
    assert "lab.yaml" in provision.why


def test_a_non_real_entry_needs_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    lab = (targets.TARGETS_DIR / "lab.yaml").read_text().split("\nexecution:")[0]
    path.write_text(lab + "\nexecution:\n  slack: simulated\n")
    with pytest.raises(targets.TargetError, match=r"execution\.slack: a simulated entry needs why"):
        targets.load(str(path))


def test_the_lab_provides_for_real_what_it_runs_and_says_why_for_the_rest() -> None:
    modes = {touch: LAB.provision(touch).mode for touch in Touches if touch is not Touches.file_only}
    real = {t for t, m in modes.items() if m == "real"}
    assert real == {
        Touches.control_plane,
        Touches.node_runtime,
        Touches.data_plane,
        Touches.load_balancer,
        Touches.git,
        Touches.argocd,
        Touches.monitoring,
        Touches.registry,
    }
    assert modes[Touches.slack] == modes[Touches.ci] == modes[Touches.storage] == "simulated"
    assert modes[Touches.gitlab] == modes[Touches.ingress] == "absent"


def lab_on_kwok() -> targets.Target:
    """The lab as layer 2 leaves it when this machine cannot run real nodes."""
    lab = targets.load("lab")
    for touched in (Touches.node_runtime, Touches.data_plane, Touches.load_balancer):
        lab.downgrade(touched, "KWOK nodes: real nodes are not possible here (no root)")
    return lab


def test_the_onprem_example_provides_everything_for_real() -> None:
    assert all(ONPREM.provision(t).mode == "real" for t in Touches if t is not Touches.file_only)


# --- the overstatements found in review, with the real bindings and the lab target ---------------------


def test_node_facts_are_real_from_kubelets_and_never_real_from_kwok_records() -> None:
    steps = of("node_label_and_taint", "workers_schedulable", "worker_capacity", "pod_cidrs")
    assert run(LAB.execution, *steps).label == "real"  # the lab's kubelets and controller-manager
    on_kwok = run(lab_on_kwok().execution, *steps)
    assert on_kwok.mode == "simulated"
    assert "KWOK nodes" in on_kwok.label
    assert run(ONPREM.execution, *steps).label == "real"


def test_the_default_storage_class_the_lab_seeds_is_not_reported_real() -> None:
    execution = run(LAB.execution, *of("one_default_storage_class", "claim_gets_default"))
    assert execution.mode == "simulated"
    assert "no local-path provisioner" in execution.label


def test_the_argocd_ingress_read_through_the_api_skips_on_the_lab() -> None:
    skipped = Execution(provided=LAB.execution).step("ingress routes", declared(BINDINGS["ingress_routes"]))
    assert skipped == [LAB.provision(Touches.ingress).why]


def test_a_message_to_the_local_slack_receiver_is_not_reported_real() -> None:
    execution = run(LAB.execution, *of("post_test_alert", "run_id_message"))
    assert execution.label == f"simulated (slack: {LAB.provision(Touches.slack).why})"


def test_a_dockerfile_lint_is_static_not_a_real_build() -> None:
    steps = of("multi_stage", "lean_final_stage", "non_root_final_stage")
    assert run(LAB.execution, of("platform_built_through")[0], *steps).label == "static"


def test_the_ingress_controller_step_skips_on_the_lab_instead_of_reading_the_labs_own_service() -> None:
    assert site_for(LAB).ingress_controller_missing() == lab_site.INGRESS_NOT_IN_LAB
    assert site_for(ONPREM).ingress_controller_missing() is None


# --- planted lies ---------------------------------------------------------------------------------------


@touches(Touches.control_plane)
def planted_capacity_claims_the_control_plane(kube: object) -> None:
    cluster.expect_capacity(kube, ["k8s-worker1"], 4, 8, 5, 110)  # type: ignore[arg-type]


@touches()
def planted_checks_nothing() -> None:
    return None


def test_a_binding_claiming_real_for_a_seeded_node_fact_is_caught() -> None:
    assert understated(planted_capacity_claims_the_control_plane) == {Touches.node_runtime}


@pytest.mark.parametrize("name", sorted(BINDINGS))
def test_no_binding_understates_what_the_functions_it_calls_touch(name: str) -> None:
    assert understated(BINDINGS[name]) == frozenset()


def test_a_scenario_that_checks_nothing_is_not_real() -> None:
    execution = run(LAB.execution, *of("platform_built_through"), declared(planted_checks_nothing))
    assert execution.mode == "simulated"
    assert execution.reasons == ["no step checked anything"]
