"""JUnit XML for CI dashboards."""
import xml.etree.ElementTree as ET


def write(path, results, suite="vmlab-scenarios"):
    ts = ET.Element("testsuite", name=suite, tests=str(len(results)),
                    failures=str(sum(r.status == "fail" for r in results)),
                    skipped=str(sum(r.status == "skip" for r in results)),
                    time=f"{sum(r.wall_s for r in results):.3f}")
    for r in results:
        tc = ET.SubElement(ts, "testcase", classname=f"scenarios.{r.backend}", name=r.scenario,
                           time=f"{r.wall_s:.3f}")
        if r.status == "fail":
            f = ET.SubElement(tc, "failure", message=r.reasons[0][:200] if r.reasons else "failed")
            f.text = "\n".join(r.reasons)
        elif r.status == "skip":
            ET.SubElement(tc, "skipped", message="; ".join(r.reasons))
    ET.ElementTree(ts).write(path, encoding="utf-8", xml_declaration=True)
