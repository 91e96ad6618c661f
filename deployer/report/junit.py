"""The JUnit report: each service's rollout (and each task) on each host is a test
case, so GitLab's test tab shows which one failed and its log excerpt."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from deployer.result import DeployResult, StepStatus

_INVALID_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CASE_KINDS = ("rollout", "task", "rollback")


def xml_text(text: str) -> str:
    return _INVALID_XML.sub("", _ANSI.sub("", text))


def render_junit(result: DeployResult) -> str:
    suite_name = f"deploy {result.app} to {result.environment}"
    suites = ET.Element("testsuites", name=xml_text(suite_name))
    suite = ET.SubElement(suites, "testsuite", name=xml_text(suite_name))
    cases = [s for s in result.steps if s.kind in CASE_KINDS]
    failures = skipped = 0
    for step in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=xml_text(f"{result.environment}.{step.host}"),
            name=xml_text(step.name),
            time=f"{step.seconds:.3f}",
        )
        if step.status is StepStatus.FAILED:
            failures += 1
            failure = ET.SubElement(case, "failure", message=xml_text(step.detail or "failed"))
            failure.text = xml_text(step.log_excerpt or step.detail)
        elif step.status is StepStatus.ROLLED_BACK:
            skipped += 1
            ET.SubElement(
                case,
                "skipped",
                message=xml_text(step.detail or "rolled back because another step failed"),
            )
        elif step.status is StepStatus.SKIPPED:
            skipped += 1
            ET.SubElement(case, "skipped", message=xml_text(step.detail or "skipped"))
        if step.log_excerpt and step.status is not StepStatus.FAILED:
            ET.SubElement(case, "system-out").text = xml_text(step.log_excerpt)
    if result.error and not failures:
        # Failed before (or outside) any rollout: one case carries the error.
        failures += 1
        case = ET.SubElement(
            suite,
            "testcase",
            classname=xml_text(result.environment),
            name="deploy",
            time=f"{result.seconds:.3f}",
        )
        ET.SubElement(case, "failure", message=xml_text(result.error)).text = xml_text(result.error)
    total = len(suite.findall("testcase"))
    for el in (suites, suite):
        el.set("tests", str(total))
        el.set("failures", str(failures))
        el.set("errors", "0")
        el.set("skipped", str(skipped))
        el.set("time", f"{result.seconds:.3f}")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
