// Allure 3 report of the suite: one self-contained index.html that opens from disk.
// BOUTIQUE_REPORTS (default reports/) is where the run wrote its results: a nightly job's artifact directory.
const reports = process.env.BOUTIQUE_REPORTS || "reports";

export default {
  name: "Online Boutique GitOps platform - verification report",
  output: `${reports}/allure-report`,
  // Each report appends its run here: the History tab and the trend charts span the nightly runs.
  historyPath: `${reports}/history.jsonl`,
  historyLimit: 60,
  // `./run report` alone re-renders the last run: it must not count that run twice.
  appendHistory: process.env.BOUTIQUE_REPORT_RERENDER !== "1",
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
