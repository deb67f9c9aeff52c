// Allure 3 report of the suite: one self-contained index.html that opens from disk.
export default {
  name: "Online Boutique GitOps platform - verification report",
  output: "reports/allure-report",
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
