// Allure 3 report of the suite: one self-contained index.html that opens from disk.
// BOUTIQUE_REPORTS (default reports/) is where the run wrote its results: a nightly job's artifact directory.
import { readFileSync } from "node:fs";

const reports = process.env.BOUTIQUE_REPORTS || "reports";

// The first page: real / simulated / static / skipped / failed / broken-platform counts per phase and the
// mutation score, as the run wrote them (boutique_suite/reporting/overview.py).
function overview() {
  try {
    return JSON.parse(readFileSync(`${reports}/overview.json`, "utf8"));
  } catch {
    return { run: "no overview.json: the run ended before its summary" };
  }
}

export default {
  name: "Online Boutique GitOps platform - verification report",
  output: `${reports}/allure-report`,
  // Each report appends its run here: the History tab and the trend charts span the nightly runs.
  historyPath: `${reports}/history.jsonl`,
  historyLimit: 60,
  // `./run report` alone re-renders the last run: it must not count that run twice.
  appendHistory: process.env.BOUTIQUE_REPORT_RERENDER !== "1",
  variables: overview(),
  // The run's own pages (traceability, resilience, broken platform, mutations) belong to the run, not to a
  // scenario: attached to the report as a whole and never counted as results.
  globalAttachments: [`${reports}/run-pages/*`],
  plugins: {
    awesome: {
      options: {
        singleFile: true,
        reportName: "Online Boutique GitOps platform",
        groupBy: ["parentSuite", "suite", "subSuite"],
      },
    },
  },
};
