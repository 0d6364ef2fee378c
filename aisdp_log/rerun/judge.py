"""Judge reruns: `bitwise` (the same seed gives the row's artefact hash and metrics) and
`statistical` (per declared metric a t interval against its goal and threshold, and the row's
recorded value against the reruns: `domain/stats.py`)."""

from __future__ import annotations

from aisdp_log.domain.nested import leaves
from aisdp_log.domain.stats import Consistency, consistency, judge, t_interval
from aisdp_log.record.environment import diff_environments
from aisdp_log.rerun.folders import read_json
from aisdp_log.rerun.plan import RowPlan, RunResult

BITWISE_METRIC = "artefact hash"


def _metrics_agree(plan: RowPlan, result: RunResult) -> list[str]:
    """Metrics that differ between the rerun and the row's record: the original metrics.json
    exactly where there is one, else the cells within the rounding typed into them."""
    recorded = read_json(plan.artefact_dir / "metrics.json")
    differ = []
    if recorded:
        for name, value in leaves(recorded):  # nested metrics by their dotted names
            if name in result.metrics and isinstance(value, (int, float)) \
                    and result.metrics[name] != float(value):
                differ.append(f"{name} {value} → {result.metrics[name]}")
        return differ
    folded = {k.casefold(): v for k, v in result.metrics.items()}
    for name, value in plan.recorded_metrics.items():
        new = folded.get(name.casefold())
        if new is None:
            continue
        decimals = plan.metric_decimals.get(name)
        tolerance = 0.5 * 10 ** -decimals if decimals is not None else 0.0
        if abs(new - value) > tolerance + 1e-12:
            differ.append(f"{name} {value} → {new}")
    return differ


def judge_bitwise(plan: RowPlan, result: RunResult) -> tuple[bool, list[str]]:
    """Whether one same-seed run reproduced the row bitwise, and the lines saying why not
    (including what differs in the environment)."""
    lines = []
    if not result.ok:
        lines.append(f"bitwise run {result.status}")
    elif plan.recorded_hash is None:
        lines.append("the row has no artefact hash to compare with")
    elif result.artefact_hash != plan.recorded_hash:
        lines.append(f"artefact hash {_short(result.artefact_hash)} differs from the row's "
                     f"{_short(plan.recorded_hash)}")
    differ = _metrics_agree(plan, result) if result.ok else []
    if differ:
        lines.append("metrics differ: " + "; ".join(differ))
    match = not lines
    result.bitwise_match = match
    if not match and result.ok:

        recorded = read_json(plan.artefact_dir / "run.json").get("environment")
        if not isinstance(recorded, dict):
            lines.append("the row's run.json records no environment to compare with")
        elif result.environment is None:
            lines.append("this run wrote no run.json environment to compare with (does the "
                         "command use aisdp_log.training.record_run?)")
        else:
            changes = diff_environments(recorded, result.environment or {})
            lines.append("environment: " + ("; ".join(changes) if changes else
                                            "no recorded difference (the training is not "
                                            "deterministic at this seed?)"))
    return match, lines


def _short(value: str | None) -> str:
    return "(none)" if value is None else value[:19] + "…"


def judge_statistical(plan: RowPlan, runs: list[RunResult], declared: dict, confidence: float
                      ) -> tuple[bool, list[dict], list[str]]:
    """Per declared metric a t interval over the runs and two verdicts: the threshold verdict
    (`domain.stats.judge`) and whether the row's recorded value is consistent with the runs
    (`domain.stats.consistency`). (reproduced, the Reproducibility rows, lines): reproduced
    when every recorded metric is consistent, no declared threshold is missed, and at least
    one metric was found consistent (a rerun that tested nothing reproduces nothing)."""

    rows, lines = [], []
    failed = [r for r in runs if not r.ok]
    if failed:
        lines.append(f"{len(failed)} of {len(runs)} runs failed: " +
                     "; ".join(f"run {r.number} {r.status}" for r in failed))
    if not declared:
        lines.append("no metric is declared in the Metrics sheet, so there is nothing to judge")
        return False, [{"Metric": "(none declared)", "Runs": len(runs) - len(failed),
                        "Verdict": "fail"}], lines
    recorded_by_name = {k.casefold(): v for k, v in plan.recorded_metrics.items()}
    reported = [(r, {k.casefold(): v for k, v in r.metrics.items()}) for r in runs if r.ok]
    reproduced, tested = True, False
    for metric in declared.values():
        name = metric.name.casefold()
        pairs = [(run, metrics[name]) for run, metrics in reported if name in metrics]
        values = [value for _, value in pairs]
        interval = t_interval(values, confidence)
        verdict = judge(interval, metric.goal, metric.threshold, expected_runs=len(runs))
        reproduced = reproduced and not verdict.failed
        row = {"Metric": metric.name, "Runs": interval.n, "Mean": interval.mean,
               "Std": interval.std, "CI low": interval.low, "CI high": interval.high,
               "Confidence": confidence, "Threshold": metric.threshold,
               "Verdict": verdict.verdict}
        shown = (f"[{interval.low:.4g}, {interval.high:.4g}]" if interval.exists
                 else "no interval")
        mean = "-" if interval.mean is None else f"{interval.mean:.4g}"
        lines.append(f"{metric.name}: mean {mean} over {interval.n} runs, "
                     f"{confidence:.0%} CI {shown}: {verdict.verdict} ({verdict.reason})")
        recorded = recorded_by_name.get(name)
        if recorded is None:
            lines.append(f"{metric.name}: the row records no value, so there is no claim "
                         "to test for consistency")
        else:
            agreement = consistency(values, recorded, tolerance=metric.tolerance,
                                    confidence=confidence, expected_runs=len(runs))
            reproduced = reproduced and agreement.consistent
            tested = tested or agreement.consistent
            row.update({"Recorded": recorded, "Consistency": agreement.verdict,
                        "Consistency bounds": agreement.bounds_text(confidence,
                                                                    metric.tolerance)})
            lines.append(_consistency_line(metric.name, recorded, agreement, confidence,
                                           metric.tolerance, pairs))
        rows.append(row)
    if not tested and reproduced:
        lines.append("no recorded metric could be tested against the reruns, so nothing "
                     "was reproduced")
    return reproduced and tested, rows, lines


def _consistency_line(name: str, recorded: float, agreement: Consistency, confidence: float,
                      tolerance: float | None, pairs: list[tuple[RunResult, float]]) -> str:
    """One line: the verdict, the recorded value, the bounds and the runs they came from."""
    runs = ", ".join(f"run {run.number} (seed {run.seed}) {value:.6g}" for run, value in pairs)
    if agreement.low is None or agreement.high is None:
        return (f"{name}: {agreement.verdict}: {agreement.reason}; the recorded {recorded:.6g} "
                f"is not tested (runs: {runs or 'none'})")
    where = "inside" if agreement.consistent else "outside"
    return (f"{name}: {agreement.verdict}: recorded {recorded:.6g} is {where} "
            f"{agreement.bounds_text(confidence, tolerance)} of {len(pairs)} runs: {runs}")
