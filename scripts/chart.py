"""`make chart`: lint the Helm chart strictly and render it (defaults and ci/full-values.yaml) with
Helm's own engine (helm-python-sdk), writing the manifests to build/chart/ for a look or a diff."""

from __future__ import annotations

import pathlib
import sys

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "llmapp-operator"
OUT = ROOT / "build" / "chart"
KUBE_VERSION = "v1.32.0"


def main() -> int:
    if (CHART / "files" / "llmapp-crd.yaml").read_bytes() != (ROOT / "crds" / "llmapp.yaml").read_bytes():
        print("chart: files/llmapp-crd.yaml differs from crds/llmapp.yaml; copy it over", file=sys.stderr)
        return 1
    chart = helm.Chart.load(str(CHART))
    failed = False
    for label, values in (("defaults", {}), ("full", yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text()))):
        report = helm.lint(str(CHART), values, strict=True, kube_version=KUBE_VERSION)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        for problem in problems:
            print(f"chart lint ({label}): {problem.get('path', '')} {problem['error']}", file=sys.stderr)
        failed |= bool(problems)
        manifests = chart.render(values, name="llmapp-operator", namespace="llmapp-system", is_install=True)
        target = OUT / f"{label}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"# Source: {path}\n{text.strip()}\n---\n" for path, text in sorted(manifests.items())
                                  if text.strip()))
        kinds = [doc["kind"] for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]
        print(f"chart ({label}): {len(kinds)} objects -> {target.relative_to(ROOT)}: {', '.join(sorted(kinds))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
